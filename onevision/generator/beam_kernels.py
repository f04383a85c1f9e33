"""Compiled steps of beam search's bookkeeping: scoring every next token of every beam, and each query's best
continuations. In NumPy these are a dozen calls each on arrays of 50 x 256, several microseconds apiece."""
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
def top_k_rows(grid, k):
    """Each row's k largest finite values in descending order (ties: lower index first) and their columns;
    fewer than k finite values leave -inf and index -1 at the end. A size-k heap per row: one pass."""
    b, n = grid.shape
    values = np.full((b, k), -np.inf, np.float32)
    index = np.full((b, k), -1, np.int64)
    for r in range(b):
        hv = np.full(k, -np.inf, np.float32)
        hi = np.full(k, n, np.int64)  # index n: below any real entry of equal value
        for j in range(n):
            x = grid[r, j]
            if x == -np.inf or not _below(hv[0], hi[0], x, j):
                continue
            hv[0], hi[0] = x, j
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
        for t in range(k):
            if hv[order[t]] > -np.inf:
                values[r, t] = hv[order[t]]
                index[r, t] = hi[order[t]]
    return values, index


def compile_kernels() -> None:
    """Compile (or load from the disk cache) both kernels for the types beam search passes."""
    f = np.zeros((2, 3), np.float32)
    candidates(f, np.zeros(2, np.float32), f, np.zeros(2, np.int64), np.zeros((0, 3), np.float32),
               np.zeros(2, np.int64))
    top_k_rows(f, 2)
