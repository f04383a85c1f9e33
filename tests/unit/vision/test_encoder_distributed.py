"""`onevision train encoder --nproc 2`: two gloo ranks under torchrun, one family batch each per step."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from onevision.vision.encoder import ImageEncoder
from onevision.vision.features import CatalogueFeatures

ROOT = Path(__file__).resolve().parents[3]
SMALL = {"model": {"widths": [16, 32, 48, 64], "embed_dim": 64}, "train": {"epochs": 2, "items_per_batch": 16}}


def test_two_ranks_train_an_encoder_that_rank_zero_writes(tiny_world_dir: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-m", "onevision.cli", "train", "encoder", "--world", str(tiny_world_dir),
                          "--out", str(tmp_path / "enc"), "--nproc", "2", "--config", json.dumps(SMALL)],
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("encoder written to") == 1  # rank 0 alone reports (and writes)
    losses = json.loads((tmp_path / "enc" / "train_log.json").read_text())["losses"]
    assert len(losses) == 2 and all(l == l for l in losses)
    assert ImageEncoder.load(tmp_path / "enc").config.embed_dim == 64
    assert len(CatalogueFeatures.load(tmp_path / "enc").item_ids) == 64
