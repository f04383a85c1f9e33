"""Beam search in one compiled function: `decode._beam_search` for the compiled decoder when every level of the
trie has its dense tables, without the Python and NumPy calls between its steps.

At batch 1 the served search runs three decoder steps of a few dozen rows; the layers' arithmetic is about a third
of its time and the rest was per-call cost: about twenty NumPy and Numba calls per level (gathers, concatenations,
the cache's reorder, the candidates' and survivors' kernels), each a few microseconds. Here the whole search —
forced paths, pruning, the cache's reorders, the user term — is one call that reuses the same kernels
(`numba_decoder._layer`, `beam_kernels.candidates` and `survivors`), so it ranks as the NumPy loop does (tests compare
both on six pruning settings; scores agree to 1e-5, as the compiler may order the inlined arithmetic otherwise). Large catalogues, whose deep levels have no dense table, and the
torch decoder keep the NumPy loop.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from onevision.generator.beam_kernels import candidates, survivors
from onevision.generator.numba_decoder import CompiledDecoder, _head, _layer

_JIT = dict(cache=True, fastmath=False, nogil=True)  # exact IEEE arithmetic: -inf masks stay -inf
_LINEARS_PER_LAYER = 6  # numba_decoder._Layer.weights(): self qkv, self out, cross q, cross out, ff1, ff2


@njit(**_JIT)
def _gather_rows(cache, rows):
    """cache (layers, positions, N, d) -> the same for rows (M,) of N."""
    layers, positions, _, d = cache.shape
    out = np.empty((layers, positions, rows.shape[0], d), np.float32)
    for l in range(layers):
        for p in range(positions):
            for i in range(rows.shape[0]):
                out[l, p, i] = cache[l, p, rows[i]]
    return out


@njit(**_JIT)
def _fill_base(cand, rows, score, table, node, bias, query, use_bias):
    """cand[i] = score[i] + the trie penalty (+ the user term) for rows i: the candidates of a row the decoder does not
    run (a forced path or a one-token level, whose tokens count log p = 0)."""
    for i in rows:
        for j in range(cand.shape[1]):
            x = score[i] + table[node[i], j]
            if use_bias:
                x += bias[query[i], j]
            cand[i, j] = x


@njit(**_JIT)
def _step(prefix, query, first_pos, cache_k, cache_v, cross_k, cross_v, weights, biases, layer_eps, heads,
          head_w, head_b, final_eps, sid_embeddings, level_embedding, bos):
    """The decoder's logits (N, V) for rows with `prefix` (N, t), running positions first_pos..t (more than one
    after a level the decoder skipped) and writing their keys and values into the caches."""
    n, t = prefix.shape
    d = bos.shape[0]
    x = np.empty((n, d), np.float32)
    for pos in range(first_pos, t + 1):
        if pos == 0:
            for i in range(n):
                x[i] = bos
        else:
            emb = sid_embeddings[pos - 1]
            for i in range(n):
                x[i] = emb[prefix[i, pos - 1]] + level_embedding[pos]
        for l in range(cache_k.shape[0]):
            j = l * _LINEARS_PER_LAYER
            x = _layer(x, pos, cache_k[l], cache_v[l], query, cross_k[l], cross_v[l], heads, layer_eps[l],
                       weights[j], biases[j], weights[j + 1], biases[j + 1], weights[j + 2], biases[j + 2],
                       weights[j + 3], biases[j + 3], weights[j + 4], biases[j + 4], weights[j + 5], biases[j + 5])
    return _head(x, final_eps, head_w[t], head_b[t])


@njit(**_JIT)
def _search(b, penalties, transitions, single_leaf, vocab_sizes, level_biases, beam_width, top_k,
            margin, mass, floor_width, forced_paths, cross_k, cross_v, weights, biases, layer_eps, heads, head_w,
            head_b, final_eps, sid_embeddings, level_embedding, bos):
    """Returns the final rows (query, prefix (N, depth), node, score), grouped by query in score order, and the
    number of decoder rows run."""
    depth = vocab_sizes.shape[0]
    d = bos.shape[0]
    layers = layer_eps.shape[0]
    query = np.arange(b)
    node = np.zeros(b, np.int64)
    prefix = np.zeros((b, 0), np.int64)
    score = np.zeros(b, np.float32)
    counts = np.ones(b, np.int64)
    decoder_rows = 0
    cache_row = np.arange(b)
    has_cache = False
    cached = 0  # positions the cache holds
    cache_k = np.zeros((layers, depth, 0, d), np.float32)
    cache_v = np.zeros((layers, depth, 0, d), np.float32)
    no_bias = np.zeros((0, 0), np.float32)
    for level in range(depth):
        table = penalties[level]
        bias = level_biases[level]  # the user term of this level: (B, V), or no rows
        use_bias = bias.shape[0] > 0
        n = query.shape[0]
        v = table.shape[1]
        stepped_any = False
        stepped_rows = np.empty(0, np.int64)
        if vocab_sizes[level] > 1:
            forced = np.zeros(n, np.bool_)
            if forced_paths:
                single = single_leaf[level]
                for i in range(n):
                    forced[i] = single[node[i]]
            cand = np.empty((n, v), np.float32)
            _fill_base(cand, np.flatnonzero(forced), score, table, node, bias, query, use_bias)
            stepped_rows = np.flatnonzero(~forced)
            if stepped_rows.shape[0] > 0:
                stepped_any = True
                if not has_cache:  # the first step: rows -> queries, an empty cache of every position
                    cache_k = np.zeros((layers, depth, stepped_rows.shape[0], d), np.float32)
                    cache_v = np.zeros((layers, depth, stepped_rows.shape[0], d), np.float32)
                else:
                    cache_k = _gather_rows(cache_k, cache_row[stepped_rows])
                    cache_v = _gather_rows(cache_v, cache_row[stepped_rows])
                sub_prefix = np.ascontiguousarray(prefix[stepped_rows])
                sub_query = np.ascontiguousarray(query[stepped_rows])
                logits = _step(sub_prefix, sub_query, cached, cache_k, cache_v, cross_k, cross_v, weights, biases,
                               layer_eps, heads, head_w, head_b, final_eps, sid_embeddings, level_embedding, bos)
                cached = level + 1
                decoder_rows += stepped_rows.shape[0]
                scored = candidates(logits, score[stepped_rows], table, node[stepped_rows],
                                    bias if use_bias else no_bias, sub_query)
                for r in range(stepped_rows.shape[0]):
                    cand[stepped_rows[r]] = scored[r]
        else:  # a one-token level: log p = 0, the decoder is skipped
            cand = np.empty((n, v), np.float32)
            _fill_base(cand, np.arange(n), score, table, node, bias, query, use_bias)
        last = level == depth - 1
        width = max(max(beam_width if not last else top_k, top_k), 1)
        first = np.cumsum(counts) - counts
        q_idx, src, token, chosen, counts = survivors(
            cand, first, counts, width, top_k if last else 0, np.inf if last else margin, 1.0 if last else mass,
            floor_width)
        trans = transitions[level]
        new_node = np.empty(src.shape[0], np.int64)
        for i in range(src.shape[0]):
            new_node[i] = trans[node[src[i]], token[i]]
        if stepped_any:  # the parents' rows in the cache the step just extended
            has_cache = True
            in_cache = np.full(n, -1, np.int64)
            for r in range(stepped_rows.shape[0]):
                in_cache[stepped_rows[r]] = r
            cache_row = in_cache[src]
        else:
            cache_row = cache_row[src]
        new_prefix = np.empty((src.shape[0], level + 1), np.int64)
        for i in range(src.shape[0]):
            for t in range(level):
                new_prefix[i, t] = prefix[src[i], t]
            new_prefix[i, level] = token[i]
        prefix = new_prefix
        node = new_node
        score = chosen
        query = q_idx
    return query, prefix, node, score, decoder_rows


def search(decoder: CompiledDecoder, tables: tuple, vocab_sizes: tuple[int, ...], b: int,
           level_biases: list[np.ndarray | None], beam_width: int, top_k: int, margin: float, mass: float,
           floor_width: int, forced_paths: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Run the whole search for `b` queries whose memory `decoder` holds (see `_search`); `level_biases`: the user
    term (B, V_l) of each level, None where it has none."""
    w = decoder.w
    penalties, transitions, single = tables
    weights, biases, layer_eps = w.flat_layers
    return _search(
        b, penalties, transitions, single, np.asarray(vocab_sizes, np.int64),
        tuple(np.zeros((0, 0), np.float32) if t is None else np.ascontiguousarray(t, np.float32) for t in level_biases),
        beam_width, top_k, margin, mass, floor_width,
        forced_paths, tuple(k for k, _ in decoder.cross), tuple(v for _, v in decoder.cross), weights, biases,
        layer_eps, decoder.heads, tuple(h.weight for h in w.heads), tuple(h.bias for h in w.heads), np.float32(w.eps),
        w.sid_embeddings, w.level_embedding, w.bos)
