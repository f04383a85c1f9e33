from __future__ import annotations

import numpy as np
import pytest
import torch

from onevision.generator.model import GeneratorConfig, GeneratorInput, SidGenerator
from onevision.generator.numba_decoder import CompiledDecoder


def _model(layers: int = 2, seed: int = 0) -> tuple[SidGenerator, GeneratorInput]:
    torch.manual_seed(seed)
    cfg = GeneratorConfig(token_dim=8, embed_dim=8, vocab_sizes=(6, 5, 4, 3), d_model=16, heads=4,
                          encoder_layers=1, decoder_layers=layers, dropout=0.0)
    model = SidGenerator(cfg).eval()
    for p in model.parameters():  # the norms' scales and shifts away from 1 and 0, so folding them is tested
        if p.dim() == 1:
            p.data.add_(torch.randn_like(p) * 0.5)
    return model, GeneratorInput(torch.randn(3, 9, 8), torch.randn(3, 8), torch.rand(3, 9))


@pytest.mark.parametrize("query", [[0, 0, 1, 2, 2, 2], [0, 0, 1, 1, 2, 2], [0, 0, 0]])
@torch.no_grad()
def test_each_step_equals_the_full_decoder_on_the_prefix(query: list[int]) -> None:
    model, inp = _model()
    memory = model.encode(inp)
    query = np.array(query)
    decoder = CompiledDecoder(model, memory.numpy())
    rng = np.random.default_rng(0)
    prefix = np.zeros((len(query), 0), np.int64)
    for level in range(model.config.depth):
        fast = decoder.step(prefix, query)
        slow = model.decode_step(memory[torch.from_numpy(query)], torch.from_numpy(prefix))
        np.testing.assert_allclose(fast, slow.numpy(), atol=1e-5, rtol=1e-5)
        src = rng.integers(0, len(query), len(query))  # survivors and their parents, in any order
        decoder.reorder(src)
        query = query[src]
        prefix = np.concatenate([prefix[src], rng.integers(0, model.config.vocab_sizes[level], (len(query), 1))], 1)


@torch.no_grad()
def test_a_skipped_level_is_caught_up_on_the_next_step() -> None:
    model, inp = _model(seed=1)
    memory = model.encode(inp)
    query = np.arange(3)
    decoder = CompiledDecoder(model, memory.numpy())
    decoder.step(np.zeros((3, 0), np.int64), query)
    prefix = np.array([[1, 0], [2, 0], [3, 0]])  # level 1 skipped (a one-token level): two new positions
    np.testing.assert_allclose(decoder.step(prefix, query), model.decode_step(memory, torch.from_numpy(prefix)).numpy(),
                               atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_decoding_follows_weights_changed_in_place_or_replaced() -> None:
    model, inp = _model(seed=3)
    memory = model.encode(inp)
    query, prefix = np.arange(3), np.zeros((3, 0), np.int64)
    CompiledDecoder(model, memory.numpy()).step(prefix, query)  # the weights are prepared once per model
    for p in model.decoder.parameters():
        p.mul_(1.5)  # what an optimizer step does: in place
    expected = model.decode_step(memory, torch.from_numpy(prefix)).numpy()
    np.testing.assert_allclose(CompiledDecoder(model, memory.numpy()).step(prefix, query), expected, atol=1e-5, rtol=1e-5)
    model.decoder.layers[0].linear1.weight = torch.nn.Parameter(torch.randn_like(model.decoder.layers[0].linear1.weight))
    expected = model.decode_step(memory, torch.from_numpy(prefix)).numpy()
    np.testing.assert_allclose(CompiledDecoder(model, memory.numpy()).step(prefix, query), expected, atol=1e-5, rtol=1e-5)


def test_tiny_bundle_rankings_are_the_same_with_either_engine(tiny_models, monkeypatch) -> None:
    """The served search on a trained bundle, one query at a time (as at batch 1) and as one batch."""
    from onevision.bundle import load_retriever
    from onevision.vision.images import decode_images
    from onevision.world import load_world

    retriever = load_retriever(tiny_models.generator_bundle)
    q = load_world(tiny_models.world).queries_of("test").iloc[:16]
    images, users = decode_images(q["image"].tolist()), q["user_id"].to_numpy()

    def rankings(engine: str) -> tuple[np.ndarray, np.ndarray]:
        monkeypatch.setattr(retriever, "engine", engine)
        parts = [retriever.decode(images[i : i + 1], users[i : i + 1], 10) for i in range(len(q))]
        whole = retriever.decode(images, users, 10)
        assert (np.concatenate([p.item_ids for p in parts]) == whole.item_ids).all()
        return whole.item_ids, whole.scores

    numpy_items, numpy_scores = rankings("numba")
    torch_items, torch_scores = rankings("torch")
    assert (numpy_items == torch_items).all()
    np.testing.assert_allclose(numpy_scores, torch_scores, atol=1e-4)


@torch.no_grad()
def test_the_compiled_encoder_equals_the_model_encoder() -> None:
    from onevision.generator.numba_decoder import encode

    model, inp = _model(seed=4)
    for keep in (None, 5):
        expected = model.encode(inp, keep).numpy()
        np.testing.assert_allclose(encode(model, model.encoder_inputs(inp, keep).numpy()), expected, atol=1e-5, rtol=1e-5)


def _survivors_by_sorting(cand, counts, k, keep_first, margin, mass, floor_width):
    """What `survivors` computes, by sorting each query's candidates (stable: ties to the lower index)."""
    first = np.cumsum(counts) - counts
    out = ([], [], [], [])
    v = cand.shape[1]
    for q, (lo, c) in enumerate(zip(first, counts)):
        flat = cand[lo:lo + c].reshape(-1)
        order = np.argsort(-flat, kind="stable")[:k]
        top = flat[order]
        keep = np.isfinite(top)
        if not keep.any():
            continue
        j = np.arange(len(top))
        if keep_first:
            keep &= j < keep_first
        else:
            keep &= (top >= top[0] - np.float32(margin)) | (j < floor_width)
            if mass < 1:
                p = np.exp(np.where(keep, top - top[0], -np.inf))
                p /= p.sum()
                keep &= (np.cumsum(p) - p < mass) | (j < floor_width)
        for name, values in zip(out, (np.full(keep.sum(), q), lo + order[keep] // v, order[keep] % v, top[keep])):
            name.extend(values.tolist())
    return out


@pytest.mark.parametrize("keep_first, margin, mass", [(0, np.inf, 1.0), (3, np.inf, 1.0), (0, 1.5, 1.0),
                                                      (0, np.inf, 0.8), (0, 2.0, 0.9)])
def test_survivors_keep_each_querys_best_continuations_in_stable_order_and_prune(keep_first, margin, mass) -> None:
    from onevision.generator.beam_kernels import survivors

    rng = np.random.default_rng(0)
    counts = np.array([3, 1, 4, 2])  # uneven rows per query
    cand = (rng.integers(0, 6, (counts.sum(), 5)) * -0.5).astype(np.float32)  # many ties
    cand[rng.random(cand.shape) < 0.3] = -np.inf
    cand[3] = -np.inf  # query 1: no valid continuation
    cand[8:, 1:] = -np.inf  # query 3: fewer finite candidates than k
    got = survivors(cand, np.cumsum(counts) - counts, counts, 6, keep_first, margin, mass, 2)
    expected = _survivors_by_sorting(cand, counts, 6, keep_first, margin, mass, 2)
    for g, e in zip(got[:4], expected):
        assert g.tolist() == e
    assert got[4].tolist() == np.bincount(expected[0], minlength=4).tolist()
    assert got[4][1] == 0 and got[4][3] == 2


def test_candidates_add_the_score_log_softmax_user_term_and_trie_penalty() -> None:
    from onevision.generator.beam_kernels import candidates

    rng = np.random.default_rng(1)
    logits = rng.normal(size=(5, 7)).astype(np.float32)
    score = rng.normal(size=5).astype(np.float32)
    penalty = np.where(rng.random((3, 7)) < 0.4, -np.inf, 0.0).astype(np.float32)
    node, query = np.array([0, 2, 1, 1, 0]), np.array([0, 0, 1, 1, 1])
    bias = rng.normal(size=(2, 7)).astype(np.float32)
    logp = logits - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True)) - logits.max(1, keepdims=True)
    expected = score[:, None] + logp + penalty[node]
    got = candidates(logits, score, penalty, node, np.zeros((0, 0), np.float32), query)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert (np.isneginf(got) == np.isneginf(expected)).all()
    np.testing.assert_allclose(candidates(logits, score, penalty, node, bias, query), expected + bias[query], atol=1e-5)
