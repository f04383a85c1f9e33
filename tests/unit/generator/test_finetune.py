from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from onevision.generator.data import ImageBank, VisualExamples, make_input
from onevision.generator.finetune import FinetuneConfig, distillation, finetune_batches
from onevision.generator.model import GeneratorConfig, SidGenerator
from onevision.generator.train import sid_loss

VOCAB = (5, 4, 3)


def _examples(n: int, seed: int) -> VisualExamples:
    g = torch.Generator().manual_seed(seed)
    bank = ImageBank(torch.randn(n, 9, 8, generator=g), torch.randn(n, 8, generator=g), torch.rand(n, 9, generator=g))
    sids = torch.stack([torch.randint(0, v, (n,), generator=g) for v in VOCAB], 1)
    return VisualExamples(bank, sids)


def _models() -> tuple[SidGenerator, SidGenerator]:
    torch.manual_seed(0)
    cfg = GeneratorConfig(token_dim=8, embed_dim=8, vocab_sizes=VOCAB, d_model=16, heads=2, encoder_layers=1,
                          decoder_layers=1, dropout=0.0)
    model = SidGenerator(cfg).eval()
    reference = SidGenerator(cfg).eval()
    reference.load_state_dict(model.state_dict())
    with torch.no_grad():  # a student that has moved away from its frozen parent, so the KL is not zero
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model, reference


def test_replay_cross_entropy_adds_the_replayed_views_own_sid_loss() -> None:
    model, reference = _models()
    new, old = _examples(8, 1), _examples(24, 2)
    base = FinetuneConfig(batch_size=8, replay=3.0, distill=2.0)
    with_ce = dataclasses.replace(base, replay_ce=0.5)
    plain = next(iter(finetune_batches(model, reference, new, old, base)(0)))
    mixed = next(iter(finetune_batches(model, reference, new, old, with_ce)(0)))
    # the same rows in both (the sample depends on the seed only): recompute the replay terms from them
    rng = np.random.default_rng([base.seed, 18, 0])  # batch 8 at replay 3: 2 new and 6 old rows a step, 4 steps
    new_rows = rng.permutation(len(new.sids))[:2]
    old_rows = rng.permutation(np.resize(np.arange(24), 4 * 6))[:6]
    with torch.no_grad():
        inp, sids = make_input(old.bank, old_rows), old.sids[old_rows]
        student = model(inp, sids)
        expected_plain = (sid_loss(model(make_input(new.bank, new_rows), new.sids[new_rows]), new.sids[new_rows])
                          + base.distill * distillation(student, reference(inp, sids)))
        torch.testing.assert_close(plain(model), expected_plain)
        torch.testing.assert_close(mixed(model), expected_plain + 0.5 * sid_loss(student, sids))


@pytest.mark.parametrize("field", ["replay_ce", "distill"])
def test_negative_replay_weights_are_refused(field: str) -> None:
    with pytest.raises(ValueError, match="replay_ce and distill must be >= 0"):
        FinetuneConfig(**{field: -1.0})
