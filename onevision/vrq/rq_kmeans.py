"""The RQ-KMeans baseline: residual k-means directly on item embeddings (no alignment, no training)."""
from __future__ import annotations

import numpy as np

from onevision.vrq.kmeans import kmeans
from onevision.vrq.quantizer import Quantized, TrainingSet, residual_quantize, residual_reconstruction, squared_distances


class ResidualKMeans:
    """A `Quantizer`: level l clusters the residual left by levels < l."""

    def __init__(self, codebook_sizes: tuple[int, ...], seed: int = 0):
        self.codebook_sizes = codebook_sizes
        self.seed = seed
        self.codebooks: list[np.ndarray] = []

    def fit(self, data: TrainingSet) -> Quantized:
        residual = data.items.astype(np.float32).copy()
        self.codebooks = []
        for level, k in enumerate(self.codebook_sizes):
            cb = kmeans(residual, k, seed=self.seed + level)
            self.codebooks.append(cb)
            residual -= cb[squared_distances(residual, cb).argmin(1)]
        return self.quantize(data.items)

    def quantize(self, x: np.ndarray) -> Quantized:
        if not self.codebooks:
            raise ValueError("ResidualKMeans has no codebooks: fit it first")
        return residual_quantize(x, self.codebooks)

    def encode(self, x: np.ndarray) -> np.ndarray:
        return self.quantize(x).indices

    def get_output_from_indices(self, indices: np.ndarray) -> np.ndarray:
        return residual_reconstruction(indices, self.codebooks)
