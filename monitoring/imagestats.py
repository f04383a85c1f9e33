"""Input statistics of query photos, logged per request so input drift can be tested: brightness,
contrast, colour saturation and sharpness of the image, and (for arms with an encoder) the first
principal components of the embedding on a basis fixed by the catalogue's own images."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IMAGE_STAT_COLUMNS = ("img_brightness", "img_contrast", "img_saturation", "img_sharpness")
EMBEDDING_COLUMNS = ("emb_pc1", "emb_pc2")


def image_stats(images: np.ndarray) -> dict[str, np.ndarray]:
    """uint8 (B, H, W, 3) → per-image statistics in [0, 1] units."""
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 images of shape (B, H, W, 3), got {images.shape}")
    x = images.astype(np.float32) / 255.0
    luma = x @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    lap = 4 * luma[:, 1:-1, 1:-1] - luma[:, :-2, 1:-1] - luma[:, 2:, 1:-1] - luma[:, 1:-1, :-2] - luma[:, 1:-1, 2:]
    return {
        "img_brightness": luma.mean(axis=(1, 2)),
        "img_contrast": luma.std(axis=(1, 2)),
        "img_saturation": (x.max(axis=-1) - x.min(axis=-1)).mean(axis=(1, 2)),
        "img_sharpness": np.abs(lap).mean(axis=(1, 2)),
    }


@dataclass(frozen=True)
class PcaBasis:
    mean: np.ndarray  # (D,)
    components: np.ndarray  # (n, D), rows orthonormal, sign fixed (largest |loading| positive)

    @classmethod
    def fit(cls, embeddings: np.ndarray, n_components: int = len(EMBEDDING_COLUMNS)) -> PcaBasis:
        emb = np.asarray(embeddings, dtype=np.float64)
        if emb.ndim != 2 or len(emb) < 2:
            raise ValueError(f"PCA needs at least 2 embeddings of shape (N, D), got {emb.shape}")
        mean = emb.mean(axis=0)
        _, _, vt = np.linalg.svd(emb - mean, full_matrices=False)
        comps = vt[:n_components]
        if len(comps) < n_components:
            comps = np.vstack([comps, np.zeros((n_components - len(comps), emb.shape[1]))])
        signs = np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(axis=1)])
        signs[signs == 0] = 1
        return cls(mean=mean, components=comps * signs[:, None])

    def project(self, embeddings: np.ndarray) -> np.ndarray:
        return (np.asarray(embeddings, dtype=np.float64) - self.mean) @ self.components.T
