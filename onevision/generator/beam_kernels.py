"""Compiled steps of beam search's bookkeeping: scoring every next token of every beam, and each query's
surviving continuations (top k, then pruning). In NumPy these are a dozen calls each on arrays of 50 x 256, several microseconds apiece."""
from __future__ import annotations

import numpy as np
from numba import njit

_JIT = dict(cache=True, fastmath=False, nogil=True)  # exact IEEE arithmetic: -inf masks stay -inf


@njit(**_JIT)
def candidates(logits, score, penalty, node, bias, query):
    """score[i] + log_softmax(logits[i]) (+ bias[query[i]] when bias has rows) + penalty[node[i]]: (N, V)."""
    n, v = logits.shape
    out = np.empty((n, v), np.float32)
    for i in range(n):
        top = logits[i, 0]
        for j in range(1, v):
            top = max(top, logits[i, j])
        total = np.float32(0.0)
        for j in range(v):
            total += np.exp(logits[i, j] - top)
        shift = top + np.log(total)
        for j in range(v):
            x = logits[i, j] - shift
            if bias.shape[0] > 0:
                x += bias[query[i], j]
            out[i, j] = (score[i] + x) + penalty[node[i], j]
    return out


@njit(**_JIT)
def _below(v1, i1, v2, i2):
    """Heap order: a lower score, or the same score at a later index (so earlier indices win ties)."""
    return v1 < v2 or (v1 == v2 and i1 > i2)


@njit(**_JIT)
def _top_k(x, k):
    """The k largest finite values of a 1-D array in descending order (ties: lower index first) and their
    indices; fewer than k finite values leave -inf and index -1 at the end. A size-k heap: one pass."""
    n = x.shape[0]
    hv = np.full(k, -np.inf, np.float32)
    hi = np.full(k, n, np.int64)  # index n: below any real entry of equal value
    for j in range(n):
        v = x[j]
        if v == -np.inf or not _below(hv[0], hi[0], v, j):
            continue
        hv[0], hi[0] = v, j
        p = 0
        while True:  # sift down
            c = 2 * p + 1
            if c >= k:
                break
            if c + 1 < k and _below(hv[c + 1], hi[c + 1], hv[c], hi[c]):
                c += 1
            if not _below(hv[c], hi[c], hv[p], hi[p]):
                break
            hv[p], hv[c] = hv[c], hv[p]
            hi[p], hi[c] = hi[c], hi[p]
            p = c
    by_index = np.argsort(hi, kind="mergesort")
    order = by_index[np.argsort(-hv[by_index], kind="mergesort")]
    values = np.full(k, -np.inf, np.float32)
    index = np.full(k, -1, np.int64)
    for t in range(k):
        if hv[order[t]] > -np.inf:
            values[t] = hv[order[t]]
            index[t] = hi[order[t]]
    return values, index


@njit(**_JIT)
def survivors(cand, first, counts, k, keep_first, margin, mass, floor_width):
    """One level's surviving beams. Query q's rows are cand[first[q]:first[q] + counts[q]] (N, V); its
    candidates are those rows' entries in row-major order, of which it keeps its top k, then (keep_first > 0)
    only the first keep_first, or (pruning) those within `margin` of its best and, by descending score, until
    `mass` of their probability is covered, never fewer than `floor_width`. Returns, in query then score order,
    each survivor's query, source row, token and score, and the number of survivors per query."""
    b = first.shape[0]
    v = cand.shape[1]
    flat = cand.reshape(-1)
    total = 0
    for q in range(b):
        total += min(k, counts[q] * v)
    out_q = np.empty(total, np.int64)
    out_src = np.empty(total, np.int64)
    out_tok = np.empty(total, np.int64)
    out_score = np.empty(total, np.float32)
    kept = np.zeros(b, np.int64)
    n = 0
    probs = np.empty(k, np.float32)
    for q in range(b):
        if counts[q] == 0:
            continue
        lo = first[q] * v
        top, index = _top_k(flat[lo:lo + counts[q] * v], min(k, counts[q] * v))
        m = top.shape[0]
        if top[0] == -np.inf:  # no valid continuation
            continue
        keep = np.empty(m, np.bool_)
        for j in range(m):
            keep[j] = top[j] > -np.inf
        if keep_first > 0:
            for j in range(keep_first, m):
                keep[j] = False
        else:
            if margin < np.inf:
                bar = top[0] - np.float32(margin)
                for j in range(m):
                    keep[j] = keep[j] and (top[j] >= bar or j < floor_width)
            if mass < 1.0:  # float32, as NumPy computed it before
                z = np.float32(0.0)
                for j in range(m):
                    probs[j] = np.exp(top[j] - top[0]) if keep[j] else np.float32(0.0)
                    z += probs[j]
                running = np.float32(0.0)
                for j in range(m):
                    p = probs[j] / z
                    running += p
                    keep[j] = keep[j] and (running - p < mass or j < floor_width)
        for j in range(m):
            if keep[j]:
                out_q[n] = q
                out_src[n] = first[q] + index[j] // v
                out_tok[n] = index[j] % v
                out_score[n] = top[j]
                n += 1
                kept[q] += 1
    return out_q[:n], out_src[:n], out_tok[:n], out_score[:n], kept


def compile_kernels() -> None:
    """Compile (or load from the disk cache) both kernels for the types beam search passes."""
    f = np.zeros((2, 3), np.float32)
    candidates(f, np.zeros(2, np.float32), f, np.zeros(2, np.int64), np.zeros((0, 3), np.float32),
               np.zeros(2, np.int64))
    one = np.ones(1, np.int64)
    survivors(f, np.zeros(1, np.int64), one, 2, 0, np.inf, 1.0, 1)
