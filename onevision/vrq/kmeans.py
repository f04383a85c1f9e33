"""k-means (faiss) and the RQ-KMeans baseline: residual k-means directly on item embeddings."""
from __future__ import annotations

import numpy as np


def kmeans(x: np.ndarray, k: int, seed: int = 0, niter: int = 25) -> np.ndarray:
    """Centroids (k, D). With fewer points than k, points are repeated with tiny jitter."""
    import faiss

    x = np.ascontiguousarray(x, dtype=np.float32)
    if len(x) == 0:
        raise ValueError("k-means needs at least one point")
    if len(x) < k:
        rng = np.random.default_rng(seed)
        extra = x[rng.integers(0, len(x), k - len(x))] + rng.normal(0, 1e-3, (k - len(x), x.shape[1])).astype(np.float32)
        return np.concatenate([x, extra]).astype(np.float32)
    km = faiss.Kmeans(x.shape[1], k, niter=niter, seed=seed, verbose=False, min_points_per_centroid=1)
    # faiss sums centroid updates across OpenMP threads in whatever order they finish, so the same seed gave
    # different codebooks (and SIDs) run to run; one thread makes it deterministic (these sizes take < 1 s)
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        km.train(x)
    finally:
        faiss.omp_set_num_threads(threads)
    return km.centroids.astype(np.float32)


class ResidualKMeans:
    """RQ-KMeans: level l clusters the residual left by levels < l."""

    def __init__(self, codebook_sizes: tuple[int, ...], seed: int = 0):
        self.codebook_sizes = codebook_sizes
        self.seed = seed
        self.codebooks: list[np.ndarray] = []

    def fit(self, x: np.ndarray) -> "ResidualKMeans":
        residual = x.astype(np.float32).copy()
        self.codebooks = []
        for level, k in enumerate(self.codebook_sizes):
            cb = kmeans(residual, k, seed=self.seed + level)
            self.codebooks.append(cb)
            residual -= cb[self._nearest(residual, cb)]
        return self

    @staticmethod
    def _nearest(x: np.ndarray, cb: np.ndarray) -> np.ndarray:
        d = (x * x).sum(1, keepdims=True) - 2 * x @ cb.T + (cb * cb).sum(1)[None]
        return d.argmin(1)

    def encode(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Codes (N, L) and reconstruction (N, D)."""
        residual = x.astype(np.float32).copy()
        codes = []
        for cb in self.codebooks:
            c = self._nearest(residual, cb)
            residual -= cb[c]
            codes.append(c)
        return np.stack(codes, 1), x - residual
