"""Step budgets and the sampled stage-1 bank: what lets a 100k-item catalogue train in bounded time and memory."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from onevision import steps
from onevision.generator import train as gt
from onevision.generator.data import visual_examples
from onevision.vision.encoder import ImageEncoder
from onevision.vrq.fit import VRQArtifact
from onevision.world import load_world


def _parts(tiny_models):
    world = load_world(tiny_models.world).for_training()
    return world, ImageEncoder.load(tiny_models.encoder), VRQArtifact.load(tiny_models.vrq)


def test_a_budget_above_the_examples_builds_the_whole_bank(tiny_models) -> None:
    world, encoder, vrq = _parts(tiny_models)
    whole = visual_examples(world, encoder, vrq, 1, seed=3)
    same = visual_examples(world, encoder, vrq, 1, seed=3, max_examples=len(whole.sids))
    assert torch.equal(whole.bank.tokens, same.bank.tokens) and torch.equal(whole.sids, same.sids)


def test_a_binding_budget_samples_that_many_examples_with_their_own_sids(tiny_models) -> None:
    world, encoder, vrq = _parts(tiny_models)
    whole = visual_examples(world, encoder, vrq, 1, seed=3)
    n = len(whole.sids) // 3
    a = visual_examples(world, encoder, vrq, 1, seed=3, max_examples=n)
    b = visual_examples(world, encoder, vrq, 1, seed=3, max_examples=n)
    assert len(a.sids) == len(a.bank.tokens) == n
    assert torch.equal(a.bank.tokens, b.bank.tokens) and torch.equal(a.sids, b.sids)  # seeded
    # every sampled example is one of the catalogue's SIDs, and un-augmented views equal the whole bank's rows
    known = {tuple(r) for r in whole.sids.tolist()}
    assert all(tuple(r) in known for r in a.sids.tolist())
    whole_rows = {tuple(np.round(t.numpy(), 4).ravel()[:16]) for t in whole.bank.embedding}
    assert sum(tuple(np.round(t.numpy(), 4).ravel()[:16]) in whole_rows for t in a.bank.embedding) > 0


def test_stage1_step_budget_caps_the_optimiser_steps(tiny_models) -> None:
    world, encoder, vrq = _parts(tiny_models)
    ex = visual_examples(world, encoder, vrq, 1, seed=0)
    cfg = gt.StageConfig(epochs=3, batch_size=16, max_steps=5)
    full = -(-len(ex.sids) // cfg.batch_size)
    assert full > 2  # the budget binds
    batches = gt.stage1_batches(None, ex, cfg)  # the model is only used inside each step
    assert [sum(1 for _ in batches(e)) for e in range(3)] == [2, 2, 2]  # ceil(5 / 3) per epoch
    unbudgeted = gt.stage1_batches(None, ex, dataclasses.replace(cfg, max_steps=None))
    assert sum(1 for _ in unbudgeted(0)) == full
    assert cfg.examples_read() == 80 and dataclasses.replace(cfg, max_steps=None).examples_read() is None


def test_the_stage1_budget_reaches_the_trained_stage(tiny_models, tmp_path: Path) -> None:
    cfg = dataclasses.replace(steps.tiny_configs().generator, stage1_epochs=2, stage1_max_steps=2)
    steps.train_generator_step(tiny_models.world, tiny_models.encoder, tiny_models.vrq, tmp_path / "g1", 1, None, cfg,
                               show_progress=False)
    saved = json.loads((tmp_path / "g1" / "stage.json").read_text())["config"]
    assert saved["max_steps"] == 2 and saved["epochs"] == 2


def test_the_step_budget_must_be_positive() -> None:
    from onevision.vision.config import EncoderTrainConfig

    with pytest.raises(ValueError, match="max_steps"):
        EncoderTrainConfig(max_steps=0)
    assert EncoderTrainConfig(epochs=20, max_steps=1000).batches_per_epoch(156) == 50
    assert EncoderTrainConfig(epochs=20, max_steps=1000).batches_per_epoch(16) == 16


def test_the_streamed_bank_holds_what_the_whole_decode_holds(tiny_models, monkeypatch: pytest.MonkeyPatch) -> None:
    from onevision.generator import data

    world, encoder, vrq = _parts(tiny_models)
    whole = visual_examples(world, encoder, vrq, 0, seed=3)  # no augmentation: no random draws to differ
    monkeypatch.setattr(data, "WHOLE_DECODE_LIMIT", 1)
    monkeypatch.setattr(data, "SAMPLE_CHUNK", 7)  # chunks that do not divide the table
    streamed = visual_examples(world, encoder, vrq, 0, seed=3)
    assert torch.equal(whole.sids, streamed.sids)
    torch.testing.assert_close(whole.bank.tokens, streamed.bank.tokens, rtol=1e-3, atol=2e-4)  # other batch sizes
    torch.testing.assert_close(whole.bank.importance, streamed.bank.importance, rtol=1e-3, atol=2e-4)
