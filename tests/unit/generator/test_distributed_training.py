"""Data-parallel generator training under torchrun (2 gloo CPU ranks) against one process.

With dropout off, 2 ranks x B/2 take the same global batches as 1 rank x B, and DDP's average of the
share-weighted shard gradients is the 1-rank gradient of the whole batch; only the float summation order differs.
Tolerances: epoch losses within rel 1e-4 (stages 1-2) and stage-1 weights within 1e-3. AdamW turns the rounding
noise of gradients that are exactly zero in exact arithmetic into steps of up to lr: the attention key biases
(~3e-4 after stage 1) and the affinity scorer's bias (lr 0.05, a constant added to every code: ~0.03 after stage 2).
That constant enters stage 3's SFT term, so stage 3's loss agrees to rel 2e-3, and the final models retrieve
identical top-10 items with scores equal up to that per-query constant (atol 1e-3).
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from onevision import steps
from onevision.bundle import load_retriever
from onevision.generator.staging import GeneratorTrainingConfig
from onevision.vision.images import decode_images
from onevision.world import load_world

ROOT = Path(__file__).resolve().parents[3]
WORKER = Path(__file__).with_name("ddp_run.py")
LOSS_REL = {1: 1e-4, 2: 1e-4, 3: 2e-3}
WEIGHTS = {"rtol": 1e-3, "atol": 1e-3}


def _config(**changes) -> GeneratorTrainingConfig:
    return dataclasses.replace(steps.tiny_configs().generator, dropout=0.0, **changes)


def _torchrun(tiny_models, root: Path, config: GeneratorTrainingConfig, stages: list[int],
              crash_at: list[int] | None = None, nproc: int = 2) -> subprocess.CompletedProcess:
    spec = {"world": str(tiny_models.world), "encoder": str(tiny_models.encoder), "vrq": str(tiny_models.vrq),
            "root": str(root), "config": dataclasses.asdict(config), "stages": stages, "crash_at": crash_at,
            "world_size": nproc, "reward": str(tiny_models.cascade)}
    root.mkdir(parents=True, exist_ok=True)
    (root / "spec.json").write_text(json.dumps(spec))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
                           "--nproc-per-node", str(nproc), str(WORKER), str(root / "spec.json")],
                          env=env, capture_output=True, text=True, timeout=300)


def _state(stage_dir: Path) -> dict:
    return torch.load(stage_dir / "checkpoint.pt", map_location="cpu", weights_only=True)


def _retrieve(tiny_models, generator_dir: Path, bundle_dir: Path, n: int = 48):
    queries = load_world(tiny_models.world).queries_of("test").iloc[:n]
    bundle = steps.make_bundle_step("generator", bundle_dir, encoder_dir=tiny_models.encoder, vrq_dir=tiny_models.vrq,
                                    generator_dir=generator_dir, version="ddp-test")
    return load_retriever(bundle).retrieve(decode_images(queries["image"].tolist()), queries["user_id"].to_numpy(), k=10)


def test_two_ranks_at_global_batch_b_train_like_one_rank_at_batch_b(tiny_models, tmp_path: Path) -> None:
    """All three stages (plain CE, order-weighted CE + visual mix, DPO) at the same global batch (64)."""
    config = _config()
    run = _torchrun(tiny_models, tmp_path / "two", config, [1, 2, 3])
    assert run.returncode == 0, run.stderr[-3000:]
    previous = None
    for stage in (1, 2, 3):
        one = tmp_path / "one" / f"g{stage}"
        losses = steps.train_generator_step(tiny_models.world, tiny_models.encoder, tiny_models.vrq, one, stage,
                                            previous, config, show_progress=False, reward_dir=tiny_models.cascade).losses
        previous = one
        two = json.loads((tmp_path / "two" / f"g{stage}" / "stage.json").read_text())["losses"]
        assert len(two) == len(losses) and two == pytest.approx(losses, rel=LOSS_REL[stage]), stage
    torch.testing.assert_close(_state(tmp_path / "two" / "g1")["model"], _state(tmp_path / "one" / "g1")["model"],
                               **WEIGHTS)
    assert (tmp_path / "two" / "g2" / "userfeatures").is_dir()
    a = _retrieve(tiny_models, tmp_path / "one" / "g3", tmp_path / "bundle_one")
    b = _retrieve(tiny_models, tmp_path / "two" / "g3", tmp_path / "bundle_two")
    np.testing.assert_array_equal(a.item_ids, b.item_ids)
    np.testing.assert_allclose(a.scores - a.scores[:, :1], b.scores - b.scores[:, :1], atol=1e-3)


def test_a_two_rank_run_killed_mid_epoch_resumes_to_the_uninterrupted_result(tiny_models, tmp_path: Path) -> None:
    """Rank 0 dies at step 2 of epoch 2 (torchrun then stops rank 1); the rerun resumes from the epoch-1
    checkpoint and ends with the weights and optimiser state of an uninterrupted 2-rank run."""
    config = _config(stage1_epochs=3)
    crashed = _torchrun(tiny_models, tmp_path / "killed", config, [1], crash_at=[1, 1, 2])
    assert crashed.returncode != 0 and "test crash: stage 1 epoch 1 step 2" in crashed.stderr
    assert json.loads((tmp_path / "killed" / "g1" / "stage.json").read_text())["epochs_done"] == 1
    resumed = _torchrun(tiny_models, tmp_path / "killed", config, [1])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    whole = _torchrun(tiny_models, tmp_path / "whole", config, [1])
    assert whole.returncode == 0, whole.stderr[-3000:]
    a, b = _state(tmp_path / "killed" / "g1"), _state(tmp_path / "whole" / "g1")
    assert a["epoch"] == b["epoch"] == 3 and a["losses"] == pytest.approx(b["losses"], rel=1e-5)
    torch.testing.assert_close(a["model"], b["model"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(a["optimizer"]["state"], b["optimizer"]["state"], rtol=1e-5, atol=1e-6)
