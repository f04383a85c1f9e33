"""Trie-constrained, batched beam search with dynamic pruning.

All beams of all queries live in one flat batch of rows; each step runs the decoder once on the rows
that are still alive, masks invalid next tokens with the SID trie (one scatter, no loop per beam), adds
cumulative log-probabilities and keeps the best `width` continuations per query with one `topk`.

Dynamic pruning, both kinds:
- token pruning (`keep_tokens`): the encoder reads only the most important image tokens (prefill cost);
  `token_mass` < 1 chooses the count per batch instead: the fewest tokens holding that share of the encoder's
  pooling attention, for the query that needs the most;
- beam pruning: a beam whose log-prob falls more than `beam_margin` below its query's best is dropped, and
  the width shrinks at deeper levels when the first beams hold `confidence_mass` of the probability;
- forced paths (`forced_paths`): a beam whose prefix leads to a single SID needs no more decoder steps, since
  the trie forces its remaining tokens; it keeps its score (those tokens count log p = 0, what a softmax
  renormalised over the trie's one valid token gives) and the decoder runs only for the beams that still branch.
  On the default world a family code plus an attribute code almost always names one item, so the last decoder
  step runs for a few beams instead of 50.
With `PruningConfig()` (no pruning) the search is exactly full beam search.

The search's bookkeeping is NumPy; the decoder is the compiled one (`numba_decoder`) for small batches and the
torch one (`incremental`) for large ones (`encode_and_open`). Both rank alike.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from onevision.generator import beam_kernels, fused_search, numba_decoder
from onevision.generator.beam_kernels import candidates, survivors
from onevision.generator.incremental import IncrementalDecoder
from onevision.generator.numba_decoder import CompiledDecoder, UnsupportedModel
from onevision.generator.options import DECODER_ENGINES, SERVING_BEAM_WIDTH, SERVING_PRUNING, PruningConfig
from onevision.generator.model import GeneratorInput, SidGenerator
from onevision.threads import one_blas_thread
from onevision.vrq.sid import SidTrie




@dataclass
class DecodeResult:
    item_ids: np.ndarray  # int64 (B, k), -1 pads a short list
    sids: np.ndarray  # int64 (B, k, depth)
    scores: np.ndarray  # float32 (B, k): log-probability of the SID
    decoder_rows: int = 0  # beam rows the decoder processed (cost accounting)
    encoder_tokens: int = 0  # tokens the encoder read
    stats: dict = field(default_factory=dict)


def tokens_to_keep(importance: torch.Tensor, pruning: PruningConfig) -> int | None:
    """How many image tokens the encoder reads: `keep_tokens`, or the fewest holding `token_mass` of every
    query's importance (B, T) (None = all)."""
    if pruning.token_mass >= 1.0:
        return pruning.keep_tokens
    ranked = importance.sort(dim=1, descending=True).values.cumsum(1)
    needed = int(((ranked < pruning.token_mass * ranked[:, -1:]).sum(1) + 1).clamp(max=importance.shape[1]).max())
    return needed if pruning.keep_tokens is None else min(needed, pruning.keep_tokens)


# Beam rows per step up to which "auto" runs the compiled decoder when torch has several threads. The compiled search
# runs on one thread; torch's kernels gain from threads as batches grow. Decode per query with the fused search
# (default world, beam 50, ad hoc), compiled vs torch, served pruning: one thread, batch 16 / 32 / 64 / 128: 0.67 vs
# 0.95, 0.68 vs 0.91, 0.69 vs 0.84, 0.71 vs 0.86 ms; two threads: 0.71 vs 0.79, 0.70 vs 0.68, 0.68 vs 0.62, 0.71
# vs 0.59. Unpruned beam 50, top 50 (what the gate evaluates): one thread ×0.81-0.92 at every batch, two threads
# ×1.10-1.34. So on one thread the compiled decoder runs at any size.
COMPILED_DECODER_MAX_ROWS = 1024


def uses_compiled_decoder(engine: str, rows: int) -> bool:
    """Whether `engine` decodes `rows` beam rows per step with the compiled decoder (see DECODER_ENGINES)."""
    if engine not in DECODER_ENGINES:
        raise ValueError(f"unknown decoder engine {engine!r}; expected one of {', '.join(DECODER_ENGINES)}")
    if engine == "auto":
        return rows <= COMPILED_DECODER_MAX_ROWS or torch.get_num_threads() == 1
    return engine != "torch"


_NO_BIAS = np.zeros((0, 0), np.float32)


def compile_kernels() -> None:
    """Compile (or load from the disk cache) every kernel the search runs, e.g. when a server loads its model."""
    numba_decoder.compile_kernels()
    beam_kernels.compile_kernels()


def warm_up(model: SidGenerator, trie: SidTrie, engine: str = "auto") -> None:
    """Compile (or load from the disk cache) the search for this model's and trie's shapes of tables (the fused
    search's types depend on its layer count and depth) by decoding one blank query, e.g. when a server loads it."""
    cfg = model.config
    blank = GeneratorInput(torch.zeros(1, 1, cfg.token_dim), torch.zeros(1, cfg.embed_dim), torch.ones(1, 1))
    if cfg.affinity_features:
        blank.attribute_affinity = torch.zeros(1, cfg.vocab_sizes[cfg.attribute_level], cfg.affinity_features)
    if cfg.category_features:
        blank.category_affinity = torch.zeros(1, cfg.vocab_sizes[0], cfg.category_features)
    beam_search(model, blank, trie, 2, 1, SERVING_PRUNING, engine)


def encode_and_open(model: SidGenerator, batch: GeneratorInput, keep_tokens: int | None, rows: int,
                    engine: str = "auto") -> tuple:
    """The memory of `batch` and an incremental decoder over it for `rows` beam rows (see
    options.DECODER_ENGINES): (decoder, number of memory tokens)."""
    if uses_compiled_decoder(engine, rows):
        try:
            w = numba_decoder.prepared(model)
            memory = numba_decoder.encode(model, numba_decoder.encoder_inputs(model, batch, keep_tokens, w), w)
            return CompiledDecoder(model, memory, w), memory.shape[0] * memory.shape[1]
        except UnsupportedModel:
            if engine != "auto":
                raise
    memory = model.encode(batch, keep_tokens)
    return _TorchSteps(IncrementalDecoder(model, memory)), memory.shape[0] * memory.shape[1]


class _TorchSteps:
    """IncrementalDecoder with NumPy arrays in and out (zero-copy views), as the beam search keeps them."""

    def __init__(self, decoder: IncrementalDecoder):
        self.decoder = decoder

    def step(self, prefix: np.ndarray, query: np.ndarray) -> np.ndarray:
        return self.decoder.step(torch.from_numpy(prefix), torch.from_numpy(query)).numpy()

    def reorder(self, rows: np.ndarray) -> None:
        self.decoder.reorder(torch.from_numpy(rows))


def beam_search(
    model: SidGenerator,
    batch: GeneratorInput,
    trie: SidTrie,
    beam_width: int,
    top_k: int,
    pruning: PruningConfig = PruningConfig(),
    engine: str = "auto",
) -> DecodeResult:
    with torch.inference_mode(), one_blas_thread():
        return _beam_search(model, batch, trie, beam_width, top_k, pruning, engine)


def _beam_search(model: SidGenerator, batch: GeneratorInput, trie: SidTrie, beam_width: int, top_k: int,
                 pruning: PruningConfig, engine: str) -> DecodeResult:
    b = len(batch)  # the model must be in eval mode (SidGenerator.load returns it so)
    decoder, encoder_tokens = encode_and_open(model, batch, tokens_to_keep(batch.token_importance, pruning),
                                              b * beam_width, engine)
    # The product of experts' user terms, per level (None: the level has none)
    biases = [None if t is None else np.ascontiguousarray(t.numpy(), np.float32) for t in model.level_biases(batch)]
    depth = trie.depth
    floor_width = max(pruning.min_width, top_k, 1)
    tables = trie.dense_tables() if isinstance(decoder, CompiledDecoder) and engine != "numba-loop" else None
    if tables is not None:  # the whole search in one compiled call (the same ranking as the loop below)
        query, prefix, node, score, decoder_rows = fused_search.search(
            decoder, tables, trie.vocab_sizes, b, biases, beam_width, top_k,
            pruning.beam_margin if pruning.enabled else math.inf, pruning.confidence_mass if pruning.enabled else 1.0,
            floor_width, pruning.forced_paths)
        return _result(trie, b, top_k, query, prefix, node, score, decoder_rows, encoder_tokens)
    # Alive rows: (query index, trie node, prefix tokens, score), grouped by query; `counts` rows per query
    query = np.arange(b)
    node = np.zeros(b, dtype=np.int64)
    prefix = np.zeros((b, 0), dtype=np.int64)
    score = np.zeros(b, dtype=np.float32)
    counts = np.ones(b, dtype=np.int64)
    decoder_rows = 0
    # Row of each alive beam in the decoder's cache (-1: a forced path, which the decoder no longer runs); the cache
    # holds the rows of the last step, so it is gathered to the beams that step again before each step.
    cache_row = np.arange(b)
    has_cache = False  # no step yet: the first one reads only the memory (rows -> queries)
    for level in range(depth):
        if trie.vocab_sizes[level] > 1:
            table, rows = trie.penalty_table(level), node  # invalid next tokens: -inf
            if table is None:  # no dense table at this level: the rows' own penalties
                table, rows = trie.penalty(level, torch.from_numpy(node)).numpy(), np.arange(len(node))
            use_bias = biases[level] is not None
            level_bias = biases[level] if use_bias else _NO_BIAS
            # A beam whose prefix leads to one SID has its remaining tokens forced by the trie: with forced_paths
            # it finishes without the decoder (log p = 0, as a trie-renormalised softmax gives a single option).
            forced = trie.single_leaf(level)[node] if pruning.forced_paths else np.zeros(len(node), bool)
            if not forced.any():
                if has_cache:
                    decoder.reorder(cache_row)
                decoder_rows += len(query)
                cand = candidates(decoder.step(prefix, query), score, table, rows, level_bias, query)
                stepped = np.arange(len(query))
            else:
                stepped = np.flatnonzero(~forced)
                cand = score[:, None] + table[rows]
                if use_bias:
                    cand += level_bias[query]
                if len(stepped):
                    if has_cache:
                        decoder.reorder(cache_row[stepped])
                    decoder_rows += len(stepped)
                    cand[stepped] = candidates(decoder.step(prefix[stepped], query[stepped]), score[stepped], table,
                                               rows[stepped], level_bias, query[stepped])
        else:  # a one-token level (no collisions): log p = 0, the decoder is skipped
            cand = score[:, None] + trie.penalty(level, torch.from_numpy(node)).numpy()
            if biases[level] is not None:
                cand += biases[level][query]
            stepped = None
        width = max(beam_width if level < depth - 1 else top_k, top_k, 1)
        # Each query keeps its best `width` continuations (the list a user sees at the last level: the top_k
        # valid SIDs, never pruned shorter). Pruning never keeps fewer than top_k (or min_width) beams: every
        # surviving beam has at least one valid leaf below it, so the final list is full whenever the
        # catalogue allows.
        last = level == depth - 1
        q_idx, src, token, chosen, counts = survivors(
            cand, np.cumsum(counts) - counts, counts, width, top_k if last else 0,
            pruning.beam_margin if pruning.enabled and not last else math.inf,
            pruning.confidence_mass if pruning.enabled and not last else 1.0, floor_width)
        transitions = trie.transitions(level)
        if transitions is not None:  # the dense table of (node, token) -> child
            node = transitions.numpy()[node[src], token]
        else:
            node = trie.child(level, torch.from_numpy(node[src]), torch.from_numpy(token)).numpy()
        if stepped is not None and len(stepped):  # the parents' rows in the cache the step just extended
            has_cache = True
            in_cache = np.full(len(cache_row), -1, np.int64)
            in_cache[stepped] = np.arange(len(stepped))
            cache_row = in_cache[src]
        else:  # no step: the cache is as it was, read through the parents' rows (forced rows stay -1)
            cache_row = cache_row[src]
        prefix = np.concatenate([prefix[src], token[:, None]], 1)
        score = chosen
        query = q_idx
    return _result(trie, b, top_k, query, prefix, node, score, decoder_rows, encoder_tokens)


def _result(trie: SidTrie, b: int, top_k: int, query: np.ndarray, prefix: np.ndarray, node: np.ndarray,
            score: np.ndarray, decoder_rows: int, encoder_tokens: int) -> DecodeResult:
    """The final rows, sorted by query then score (topk order), laid out as (B, top_k)."""
    depth = trie.depth
    out_items = np.full((b, top_k), -1, dtype=np.int64)
    out_sids = np.full((b, top_k, depth), -1, dtype=np.int64)
    out_scores = np.full((b, top_k), -np.inf, dtype=np.float32)
    slot = np.arange(len(query)) - np.searchsorted(query, np.arange(b))[query]
    out_items[query, slot] = trie.leaf_item[node]
    out_sids[query, slot] = prefix
    out_scores[query, slot] = score
    return DecodeResult(out_items, out_sids, out_scores, decoder_rows, encoder_tokens)
