from __future__ import annotations

import numpy as np
import torch

from onevision.generator.incremental import IncrementalDecoder
from onevision.generator.model import GeneratorConfig, GeneratorInput, SidGenerator


def _model(layers: int = 2, seed: int = 0) -> tuple[SidGenerator, GeneratorInput]:
    torch.manual_seed(seed)
    cfg = GeneratorConfig(token_dim=8, embed_dim=8, vocab_sizes=(6, 5, 4, 3), d_model=16, heads=4,
                          encoder_layers=1, decoder_layers=layers, dropout=0.0)
    model = SidGenerator(cfg).eval()
    return model, GeneratorInput(torch.randn(3, 9, 8), torch.randn(3, 8), torch.rand(3, 9))


@torch.no_grad()
def test_each_step_equals_the_full_decoder_on_the_prefix() -> None:
    model, inp = _model()
    memory = model.encode(inp)
    query = torch.tensor([0, 0, 1, 2, 2, 2])  # several beams per query, as in beam search, in any order
    decoder = IncrementalDecoder(model, memory)
    rng = np.random.default_rng(0)
    prefix = torch.zeros(len(query), 0, dtype=torch.long)
    for level in range(model.config.depth):
        fast = decoder.step(prefix, query)
        slow = model.decode_step(memory[query], prefix)
        torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)
        src = torch.from_numpy(rng.integers(0, len(query), len(query)))  # survivors and their parents
        decoder.reorder(src)
        query = query[src]
        token = torch.from_numpy(rng.integers(0, model.config.vocab_sizes[level], len(query)))
        prefix = torch.cat([prefix[src], token[:, None]], 1)


@torch.no_grad()
@torch.no_grad()
def test_rows_grouped_evenly_by_query_take_the_folded_path_and_agree() -> None:
    model, inp = _model(seed=2)
    memory = model.encode(inp)
    query = torch.arange(3).repeat_interleave(4)  # what beam search keeps without pruning
    decoder = IncrementalDecoder(model, memory)
    prefix = torch.zeros(len(query), 0, dtype=torch.long)
    assert decoder._layout(query)[1] is None
    torch.testing.assert_close(decoder.step(prefix, query), model.decode_step(memory[query], prefix), atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_a_skipped_level_is_caught_up_on_the_next_step() -> None:
    model, inp = _model(seed=1)
    memory = model.encode(inp)
    query = torch.arange(3)
    decoder = IncrementalDecoder(model, memory)
    decoder.step(torch.zeros(3, 0, dtype=torch.long), query)
    prefix = torch.tensor([[1, 0], [2, 0], [3, 0]])  # level 1 skipped (a one-token level): two new positions
    torch.testing.assert_close(decoder.step(prefix, query), model.decode_step(memory, prefix), atol=1e-5, rtol=1e-5)


def test_tiny_bundle_rankings_equal_the_reference_decoder(tiny_models, monkeypatch) -> None:
    """The served search with the cache ranks exactly as decoding with the full decoder did."""
    from onevision.bundle import load_retriever
    from onevision.generator import decode
    from onevision.vision.images import decode_images
    from onevision.world import load_world

    retriever = load_retriever(tiny_models.generator_bundle)
    q = load_world(tiny_models.world).queries_of("test").iloc[:24]
    images, users = decode_images(q["image"].tolist()), q["user_id"].to_numpy()
    fast = retriever.decode(images, users, 10)

    class Reference:
        steps = 0

        def __init__(self, model: SidGenerator, memory: torch.Tensor):
            self.model, self.memory = model, memory

        def step(self, prefix: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
            Reference.steps += 1
            return self.model.decode_step(self.memory[query], prefix)

        def reorder(self, rows: torch.Tensor) -> None:
            pass

    monkeypatch.setattr(decode, "IncrementalDecoder", Reference)
    slow = retriever.decode(images, users, 10)
    assert (fast.item_ids == slow.item_ids).all()
    np.testing.assert_allclose(fast.scores, slow.scores, atol=1e-4)
    assert Reference.steps > 0  # the reference decoder did run


@torch.no_grad()
def test_decoding_follows_weights_changed_after_an_earlier_decode() -> None:
    model, inp = _model(seed=3)
    memory = model.encode(inp)
    query, prefix = torch.arange(3), torch.zeros(3, 0, dtype=torch.long)
    IncrementalDecoder(model, memory).step(prefix, query)  # the layers' weights are gathered once per model
    for p in model.decoder.parameters():
        p.mul_(1.5)  # what an optimizer step does: in place
    model.decoder.layers[0].linear1.weight = torch.nn.Parameter(torch.randn_like(model.decoder.layers[0].linear1.weight))
    torch.testing.assert_close(IncrementalDecoder(model, memory).step(prefix, query), model.decode_step(memory, prefix),
                               atol=1e-5, rtol=1e-5)
