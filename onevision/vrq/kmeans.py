"""Seeded, deterministic k-means (faiss): the codebook initialisation of every quantiser here."""
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

