"""A seeded VRQ fit is reproducible: the same seed gives byte-identical SIDs and codebooks, whatever the thread
count (multi-threaded faiss / torch reductions gave other SIDs run to run on the default world)."""
from __future__ import annotations

from pathlib import Path

import torch

from onevision import steps


def test_the_same_seed_gives_identical_sids_and_codebooks(tiny_models, tmp_path: Path) -> None:
    cfg = steps.tiny_configs().vrq
    before = torch.get_num_threads()
    try:
        for i, threads in enumerate((2, 1)):
            torch.set_num_threads(threads)
            steps.train_vrq_step(tiny_models.world, tiny_models.encoder, tmp_path / f"vrq{i}", cfg, show_progress=False)
    finally:
        torch.set_num_threads(before)
    assert torch.get_num_threads() == before
    for name in ("sids.parquet", "codebooks.npz", "trie.npz"):
        assert (tmp_path / "vrq0" / name).read_bytes() == (tmp_path / "vrq1" / name).read_bytes(), name
