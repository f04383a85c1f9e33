from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from onevision.generator.decode import PruningConfig, beam_search
from onevision.generator.model import GeneratorConfig, GeneratorInput, SidGenerator
from onevision.generator.numba_decoder import UnsupportedModel
from onevision.vrq.sid import SidTrie, assign_sids

VOCAB = (5, 4, 3)


def _setup(n_items: int = 30, batch: int = 6, seed: int = 0) -> tuple[SidGenerator, GeneratorInput, SidTrie]:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, (5, 4), (n_items, 2))
    sem = assign_sids(np.arange(1000, 1000 + n_items), codes)
    trie = SidTrie.build(sem, sem.vocab_sizes((5, 4)))
    cfg = GeneratorConfig(token_dim=8, embed_dim=8, vocab_sizes=trie.vocab_sizes, d_model=16, heads=2,
                          encoder_layers=1, decoder_layers=1, dropout=0.0)
    model = SidGenerator(cfg).eval()
    for p in model.heads.parameters():  # sharper distributions make ordering errors visible
        p.data.mul_(8)
    inp = GeneratorInput(torch.randn(batch, 9, 8), torch.randn(batch, 8), torch.rand(batch, 9))
    return model, inp, trie


def _exhaustive(model: SidGenerator, inp: GeneratorInput, trie: SidTrie, k: int) -> tuple[np.ndarray, np.ndarray]:
    sids = np.array([[*p] for p in _all_sids(trie)])
    items, scores = [], []
    for q in range(len(inp)):
        one = inp.select(torch.full((len(sids),), q))
        with torch.no_grad():
            lp = model.sequence_log_prob(one, torch.from_numpy(sids)).numpy()
        order = np.argsort(-lp, kind="stable")[:k]
        items.append(trie.lookup(sids[order]))
        scores.append(lp[order])
    return np.stack(items), np.stack(scores)


def _all_sids(trie: SidTrie) -> list[tuple[int, ...]]:
    import itertools

    every = np.array(list(itertools.product(*[range(v) for v in trie.vocab_sizes])))
    return [tuple(s) for s in every[trie.lookup(every) >= 0].tolist()]


@pytest.mark.parametrize("with_user_term", [False, True])
def test_full_width_beam_search_equals_exhaustive_scoring(with_user_term: bool) -> None:
    model, inp, trie = _with_affinity() if with_user_term else _setup()
    n = len(_all_sids(trie))
    result = beam_search(model, inp, trie, beam_width=n, top_k=10)
    items, scores = _exhaustive(model, inp, trie, 10)
    np.testing.assert_allclose(result.scores, scores, atol=1e-4)
    assert (result.item_ids == items).all()


@pytest.mark.parametrize("pruning", [PruningConfig(), PruningConfig(beam_margin=2.0, confidence_mass=0.9)])
def test_sparse_trie_levels_decode_as_the_dense_ones(pruning: PruningConfig, monkeypatch) -> None:
    from onevision.vrq import sid as sid_module

    model, inp, trie = _setup(seed=4)
    dense = beam_search(model, inp, trie, beam_width=5, top_k=5, pruning=pruning)
    monkeypatch.setattr(sid_module, "DENSE_LIMIT", 0)  # a catalogue too large for dense tables: CSR levels
    _, _, sparse_trie = _setup(seed=4)
    sparse = beam_search(model, inp, sparse_trie, beam_width=5, top_k=5, pruning=pruning)
    assert sparse_trie.transitions(0) is None
    assert (sparse.item_ids == dense.item_ids).all()
    np.testing.assert_allclose(sparse.scores, dense.scores, atol=1e-5)  # the fused search (dense) rounds apart


def test_constrained_decoding_never_emits_an_invalid_sid() -> None:
    model, inp, trie = _setup(n_items=25, batch=16, seed=3)
    for width in (1, 2, 5):
        result = beam_search(model, inp, trie, beam_width=width, top_k=5)
        valid = result.item_ids >= 0
        assert (trie.lookup(result.sids[valid]) == result.item_ids[valid]).all()
        assert (result.item_ids >= 0).sum(1).min() >= 1


def test_beam_search_returns_top_k_items_sorted_by_score() -> None:
    model, inp, trie = _setup()
    result = beam_search(model, inp, trie, beam_width=8, top_k=8)
    assert result.item_ids.shape == (6, 8)
    assert (np.diff(result.scores, axis=1) <= 1e-6).all()
    assert all(len(set(row)) == len(row) for row in result.item_ids.tolist())


def test_pruning_with_zero_margin_setting_equals_full_beam_search() -> None:
    model, inp, trie = _setup(seed=5)
    full = beam_search(model, inp, trie, beam_width=6, top_k=6)
    disabled = beam_search(model, inp, trie, beam_width=6, top_k=6,
                           pruning=PruningConfig(keep_tokens=9, beam_margin=math.inf, confidence_mass=1.0))
    assert (full.item_ids == disabled.item_ids).all()
    np.testing.assert_allclose(full.scores, disabled.scores)


def test_beam_pruning_cuts_decoder_rows_and_keeps_valid_results() -> None:
    model, inp, trie = _setup(seed=2)
    full = beam_search(model, inp, trie, beam_width=10, top_k=3)
    pruned = beam_search(model, inp, trie, beam_width=10, top_k=3, pruning=PruningConfig(beam_margin=2.0, confidence_mass=0.9))
    assert pruned.decoder_rows < full.decoder_rows
    assert (pruned.item_ids[:, 0] == full.item_ids[:, 0]).mean() >= 0.5
    valid = pruned.item_ids >= 0
    assert (trie.lookup(pruned.sids[valid]) == pruned.item_ids[valid]).all()


def test_token_pruning_reads_fewer_tokens() -> None:
    model, inp, trie = _setup()
    full = beam_search(model, inp, trie, beam_width=4, top_k=4)
    pruned = beam_search(model, inp, trie, beam_width=4, top_k=4, pruning=PruningConfig(keep_tokens=4))
    assert pruned.encoder_tokens < full.encoder_tokens


@pytest.mark.parametrize("k", [1, 40])
def test_short_catalogue_pads_with_minus_one(k: int) -> None:
    model, inp, trie = _setup(n_items=12)
    result = beam_search(model, inp, trie, beam_width=40, top_k=k)
    n_valid = len(_all_sids(trie))
    assert ((result.item_ids >= 0).sum(1) == min(k, n_valid)).all()


def test_single_token_level_is_skipped_without_changing_results() -> None:
    torch.manual_seed(0)
    codes = np.array([[a, b] for a in range(4) for b in range(3)])  # unique paths: the last level has one token
    sem = assign_sids(np.arange(len(codes)), codes)
    trie = SidTrie.build(sem, sem.vocab_sizes((4, 3)))
    assert trie.vocab_sizes[-1] == 1
    cfg = GeneratorConfig(token_dim=8, embed_dim=8, vocab_sizes=trie.vocab_sizes, d_model=16, heads=2,
                          encoder_layers=1, decoder_layers=1, dropout=0.0)
    model = SidGenerator(cfg).eval()
    inp = GeneratorInput(torch.randn(3, 9, 8), torch.randn(3, 8), torch.rand(3, 9))
    result = beam_search(model, inp, trie, beam_width=12, top_k=12)
    items, scores = _exhaustive(model, inp, trie, 12)
    assert (result.item_ids == items).all()
    np.testing.assert_allclose(result.scores, scores, atol=1e-4)
    assert result.decoder_rows == 3 * (1 + 4)  # levels 0 and 1 only


def _with_affinity(seed: int = 0, batch: int = 6, n_items: int = 30) -> tuple[SidGenerator, GeneratorInput, SidTrie]:
    """A model whose level 1 is an attribute level scored by user affinities and whose level 0 is scored by user x
    category affinities (non-zero weights)."""
    model, inp, trie = _setup(n_items=n_items, seed=seed, batch=batch)
    cfg = dataclasses.replace(model.config, attribute_level=1, affinity_features=2, category_features=2)
    scored = SidGenerator(cfg).eval()
    scored.load_state_dict(model.state_dict(), strict=False)
    with torch.no_grad():
        scored.affinity_scorer.weight.copy_(torch.tensor([[2.0, 1.0]]))
        scored.category_scorer.weight.copy_(torch.tensor([[1.5, -0.5]]))
    inp.attribute_affinity = torch.randn(batch, trie.vocab_sizes[1], 2)
    inp.category_affinity = torch.randn(batch, trie.vocab_sizes[0], 2)
    return scored, inp, trie


def test_the_user_term_lifts_items_of_the_codes_a_user_likes() -> None:
    model, inp, trie = _with_affinity(batch=1)
    n = len(_all_sids(trie))
    liked = 2
    neutral = beam_search(model, inp.select(torch.tensor([0])), trie, n, 10)
    inp.attribute_affinity = torch.zeros_like(inp.attribute_affinity)
    inp.attribute_affinity[:, liked] = 3.0  # this user's affinity for attribute code 2
    fan = beam_search(model, inp, trie, n, 10)
    share = lambda r: float((r.sids[0, :, 1] == liked).mean())  # noqa: E731
    assert share(fan) > share(neutral) and share(fan) >= 0.5


def test_the_category_term_lifts_items_under_the_level_0_codes_a_user_likes() -> None:
    model, inp, trie = _with_affinity(batch=1)
    inp.attribute_affinity = torch.zeros_like(inp.attribute_affinity)
    inp.category_affinity = torch.zeros_like(inp.category_affinity)
    n = len(_all_sids(trie))
    neutral = beam_search(model, inp, trie, n, 10)
    liked = sorted({int(s[0]) for s in _all_sids(trie)} - set(neutral.sids[0, :3, 0].tolist()))[0]  # not in the top 3
    under = sum(int(s[0]) == liked for s in _all_sids(trie))
    inp.category_affinity[:, liked, 0] = 10.0  # this user's click lift for the category of level-0 code `liked`
    fan = beam_search(model, inp, trie, n, 10)
    first = min(under, 10)
    assert (fan.sids[0, :first, 0] == liked).all()  # every item under the liked code comes first
    assert (neutral.sids[0, :first, 0] != liked).any()


def test_adaptive_token_pruning_keeps_the_fewest_tokens_holding_the_mass() -> None:
    from onevision.generator.decode import tokens_to_keep

    importance = torch.tensor([[0.5, 0.3, 0.1, 0.1], [0.7, 0.1, 0.1, 0.1]])
    assert tokens_to_keep(importance, PruningConfig(token_mass=0.75)) == 2  # the first query needs 0.5 + 0.3
    assert tokens_to_keep(importance[1:], PruningConfig(token_mass=0.75)) == 2
    assert tokens_to_keep(importance[1:], PruningConfig(token_mass=0.7)) == 1
    assert tokens_to_keep(importance, PruningConfig(token_mass=0.99)) == 4
    assert tokens_to_keep(importance, PruningConfig()) is None
    assert tokens_to_keep(importance, PruningConfig(token_mass=0.99, keep_tokens=3)) == 3


def test_pruning_never_returns_a_short_list() -> None:
    """The served default once cut lists below top_k (the margin applied to the final level too): 23% of
    replayed requests got fewer than 10 items."""
    model, inp, trie = _setup(n_items=30, batch=6)
    for pruning in (PruningConfig(beam_margin=0.1), PruningConfig(confidence_mass=0.3),
                    PruningConfig(beam_margin=0.5, confidence_mass=0.5, keep_tokens=3)):
        result = beam_search(model, inp, trie, beam_width=20, top_k=10, pruning=pruning)
        assert (result.item_ids >= 0).all(), pruning
        assert all(len(set(row)) == 10 for row in result.item_ids.tolist())


def test_beam_search_ranks_alike_with_either_engine() -> None:
    model, inp, trie = _with_affinity(batch=5)
    for pruning in (PruningConfig(), PruningConfig(beam_margin=2.0, confidence_mass=0.9, min_width=2)):
        for rows in (inp.select(torch.tensor([0])), inp):
            fast = beam_search(model, rows, trie, 8, 5, pruning, engine="numba")
            ref = beam_search(model, rows, trie, 8, 5, pruning, engine="torch")
            assert (fast.item_ids == ref.item_ids).all()
            np.testing.assert_allclose(fast.scores, ref.scores, atol=1e-5)
            assert fast.decoder_rows == ref.decoder_rows


def test_an_unsupported_layer_falls_back_to_torch_unless_numpy_is_asked_for() -> None:
    model, inp, trie = _setup()
    for layer in model.decoder.layers:
        layer.activation = F.gelu
    auto = beam_search(model, inp, trie, 4, 4)
    assert (auto.item_ids == beam_search(model, inp, trie, 4, 4, engine="torch").item_ids).all()
    with pytest.raises(UnsupportedModel, match="ReLU"):
        beam_search(model, inp, trie, 4, 4, engine="numba")
    with pytest.raises(ValueError, match="unknown decoder engine 'gpu'"):
        beam_search(model, inp, trie, 4, 4, engine="gpu")


def test_decode_options_name_an_engine_that_exists() -> None:
    from onevision.generator.options import SERVING_DECODE, DecodeOptions

    assert SERVING_DECODE.engine == "auto"
    with pytest.raises(ValueError, match="unknown decoder engine 'gpu'; expected one of auto, numba, numba-loop, torch"):
        DecodeOptions(engine="gpu")


def _exhaustive_forced(model: SidGenerator, inp: GeneratorInput, trie: SidTrie, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exhaustive scoring with every token the trie forces (a prefix with one SID below it) scored log p = 0."""
    sids = np.array([[*p] for p in _all_sids(trie)])
    nodes = [np.zeros(len(sids), np.int64)]
    for level in range(trie.depth - 1):
        nodes.append(trie.step(level, nodes[-1], sids[:, level]))
    free = np.stack([~trie.single_leaf(level)[nodes[level]] for level in range(trie.depth)], 1)
    items, scores = [], []
    for q in range(len(inp)):
        one = inp.select(torch.full((len(sids),), q))
        with torch.no_grad():
            logits = model(one, torch.from_numpy(sids))
        lp = sum(torch.log_softmax(x, -1).gather(1, torch.from_numpy(sids[:, i : i + 1])).squeeze(1).numpy() * free[:, i]
                 for i, x in enumerate(logits))
        for a, bias in enumerate(model.level_biases(one)):
            if bias is None:
                continue
            # forward puts the user term inside the softmax; the search adds it outside
            with torch.no_grad():
                plain = torch.log_softmax(logits[a] - bias, -1).gather(1, torch.from_numpy(sids[:, a : a + 1])).squeeze(1)
                lp = lp - (torch.log_softmax(logits[a], -1).gather(1, torch.from_numpy(sids[:, a : a + 1])).squeeze(1)
                           - plain).numpy() * free[:, a] + bias.gather(1, torch.from_numpy(sids[:, a : a + 1])).squeeze(1).numpy()
        order = np.argsort(-lp, kind="stable")[:k]
        items.append(trie.lookup(sids[order]))
        scores.append(lp[order])
    return np.stack(items), np.stack(scores)


@pytest.mark.parametrize("engine", ["numba", "numba-loop", "torch"])
@pytest.mark.parametrize("with_user_term", [False, True])
def test_forced_paths_score_the_tokens_the_trie_forces_zero_and_skip_their_rows(engine: str, with_user_term: bool) -> None:
    model, inp, trie = _with_affinity(n_items=10) if with_user_term else _setup(n_items=10)
    for level in (1, 2):  # some prefixes lead to one SID, some do not, at both decoder levels after the first
        assert trie.single_leaf(level).any() and not trie.single_leaf(level).all()
    n = len(_all_sids(trie))
    forced = beam_search(model, inp, trie, beam_width=n, top_k=10, pruning=PruningConfig(forced_paths=True), engine=engine)
    items, scores = _exhaustive_forced(model, inp, trie, 10)
    np.testing.assert_allclose(forced.scores, scores, atol=1e-4)
    assert (forced.item_ids == items).all()
    full = beam_search(model, inp, trie, beam_width=n, top_k=10, engine=engine)
    assert forced.decoder_rows < full.decoder_rows


def test_forced_paths_change_nothing_where_every_prefix_branches() -> None:
    torch.manual_seed(0)
    codes = np.array([[a, b, c] for a in range(4) for b in range(3) for c in range(2)])
    sem = assign_sids(np.arange(len(codes)), codes)
    trie = SidTrie.build(sem, sem.vocab_sizes((4, 3, 2)))
    assert not any(trie.single_leaf(level).any() for level in range(trie.depth - 1))
    cfg = GeneratorConfig(token_dim=8, embed_dim=8, vocab_sizes=trie.vocab_sizes, d_model=16, heads=2,
                          encoder_layers=1, decoder_layers=1, dropout=0.0)
    model = SidGenerator(cfg).eval()
    inp = GeneratorInput(torch.randn(3, 9, 8), torch.randn(3, 8), torch.rand(3, 9))
    full = beam_search(model, inp, trie, beam_width=6, top_k=6)
    forced = beam_search(model, inp, trie, beam_width=6, top_k=6, pruning=PruningConfig(forced_paths=True))
    assert (full.item_ids == forced.item_ids).all()
    np.testing.assert_allclose(full.scores, forced.scores)
    assert full.decoder_rows == forced.decoder_rows


def test_single_leaf_marks_prefixes_with_one_sid_below() -> None:
    sem = assign_sids(np.arange(4), np.array([[0, 0], [0, 1], [1, 0], [2, 2]]))
    trie = SidTrie.build(sem, sem.vocab_sizes((3, 3)))
    assert trie.single_leaf(0).tolist() == [False]
    assert trie.single_leaf(1).tolist() == [False, True, True]  # prefix 0 has two SIDs, 1 and 2 one each
    assert trie.single_leaf(trie.depth).all()


_PRUNINGS = (PruningConfig(), PruningConfig(forced_paths=True), PruningConfig(beam_margin=1.0, min_width=2),
             PruningConfig(confidence_mass=0.8, min_width=3),
             PruningConfig(beam_margin=2.0, confidence_mass=0.9, min_width=2, forced_paths=True),
             PruningConfig(keep_tokens=4, beam_margin=3.0, forced_paths=True))


@pytest.mark.parametrize("pruning", _PRUNINGS)
@pytest.mark.parametrize("with_user_term", [False, True])
def test_the_fused_search_ranks_as_the_step_by_step_loop(pruning: PruningConfig, with_user_term: bool) -> None:
    """The compiled search in one call (engine numba) against the NumPy loop over the same compiled steps."""
    model, inp, trie = _with_affinity(n_items=12, batch=5) if with_user_term else _setup(n_items=12, batch=5)
    assert trie.dense_tables() is not None
    for rows in (inp.select(torch.tensor([3])), inp):
        for width, k in ((6, 3), (12, 12)):
            fused = beam_search(model, rows, trie, width, k, pruning, engine="numba")
            loop = beam_search(model, rows, trie, width, k, pruning, engine="numba-loop")
            assert (fused.item_ids == loop.item_ids).all() and (fused.sids == loop.sids).all()
            np.testing.assert_allclose(fused.scores, loop.scores, atol=1e-5)  # the compiler may fuse the arithmetic otherwise
            assert fused.decoder_rows == loop.decoder_rows


def test_the_fused_search_skips_one_token_levels_and_leaves_sparse_tries_to_the_loop(monkeypatch) -> None:
    from onevision.vrq import sid as sid_module

    torch.manual_seed(0)
    codes = np.array([[a, b] for a in range(4) for b in range(3)])
    sem = assign_sids(np.arange(len(codes)), codes)
    trie = SidTrie.build(sem, sem.vocab_sizes((4, 3)))  # unique paths: the last level has one token
    cfg = GeneratorConfig(token_dim=8, embed_dim=8, vocab_sizes=trie.vocab_sizes, d_model=16, heads=2,
                          encoder_layers=1, decoder_layers=2, dropout=0.0)
    model = SidGenerator(cfg).eval()
    inp = GeneratorInput(torch.randn(3, 9, 8), torch.randn(3, 8), torch.rand(3, 9))
    fused = beam_search(model, inp, trie, 12, 12, engine="numba")
    items, scores = _exhaustive(model, inp, trie, 12)
    assert (fused.item_ids == items).all()
    np.testing.assert_allclose(fused.scores, scores, atol=1e-4)
    assert fused.decoder_rows == 3 * (1 + 4)
    monkeypatch.setattr(sid_module, "DENSE_LIMIT", 0)
    sparse_trie = SidTrie.build(sem, sem.vocab_sizes((4, 3)))
    assert sparse_trie.dense_tables() is None  # the NumPy loop decodes it, with the same result
    sparse = beam_search(model, inp, sparse_trie, 12, 12, engine="numba")
    assert (sparse.item_ids == fused.item_ids).all()
    np.testing.assert_allclose(sparse.scores, fused.scores, atol=1e-6)


def test_beam_search_runs_on_one_blas_thread(openblas_threads) -> None:
    """The compiled decoder's matmuls go to NumPy's BLAS; a second BLAS thread would spin on torch's cores."""
    from threadpoolctl import threadpool_limits

    from onevision.generator import decode

    model, inp, trie = _setup()
    beam_search(model, inp, trie, 4, 3)  # the compiled kernels load SciPy's OpenBLAS too
    seen = openblas_threads.spy(decode, "_beam_search")
    with threadpool_limits(limits=2, user_api="blas"):
        before = openblas_threads.now()
        beam_search(model, inp, trie, 4, 3)
        assert openblas_threads.now() == before
    assert seen and all(n == 1 for n in seen[0])


def test_auto_decodes_with_the_compiled_decoder_on_one_thread_and_with_torch_at_large_batches_on_more() -> None:
    from onevision.generator.decode import COMPILED_DECODER_MAX_ROWS, uses_compiled_decoder

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert uses_compiled_decoder("auto", 10 * COMPILED_DECODER_MAX_ROWS)  # one thread: torch gains nothing
        torch.set_num_threads(2)
        assert uses_compiled_decoder("auto", COMPILED_DECODER_MAX_ROWS)
        assert not uses_compiled_decoder("auto", COMPILED_DECODER_MAX_ROWS + 1)
        assert uses_compiled_decoder("numba", 10 * COMPILED_DECODER_MAX_ROWS)
        assert uses_compiled_decoder("numba-loop", 10 * COMPILED_DECODER_MAX_ROWS)
        assert not uses_compiled_decoder("torch", 1)
    finally:
        torch.set_num_threads(before)
