"""Catalogue features: every embedding the later stages need, computed once from a trained encoder."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from onevision.vision.encoder import ImageEncoder, encode_images
from onevision.vision.images import decode_images
from onevision.world.io import World

FEATURES_FILE = "catalogue_features.npz"


@dataclass(frozen=True)
class CatalogueFeatures:
    item_ids: np.ndarray  # int64 (N,), sorted
    item_category: np.ndarray  # int64 (N,)
    item_emb: np.ndarray  # float32 (N, D): L2-normalised mean of the item's shop-view embeddings
    view_emb: np.ndarray  # float32 (M, D): every shop view
    view_item_row: np.ndarray  # int64 (M,): row of the view's item
    train_photo_emb: np.ndarray  # float32 (P, D): user photos of the train split
    train_photo_item_row: np.ndarray
    test_photo_emb: np.ndarray  # float32 (T, D): user photos of the test split (held out; reports only)
    test_photo_item_row: np.ndarray

    def item_rows(self, item_ids: np.ndarray) -> np.ndarray:
        rows = np.searchsorted(self.item_ids, item_ids)
        rows = np.clip(rows, 0, len(self.item_ids) - 1)
        if np.any(self.item_ids[rows] != item_ids):
            raise KeyError("item ids not in the catalogue features")
        return rows

    def save(self, directory: Path) -> Path:
        path = Path(directory) / FEATURES_FILE
        np.savez(path, **self.__dict__)
        return path

    @classmethod
    def load(cls, directory: Path) -> "CatalogueFeatures":
        path = Path(directory) / FEATURES_FILE
        if not path.exists():
            raise FileNotFoundError(f"catalogue features missing: {path}")
        with np.load(path) as z:
            return cls(**{k: z[k] for k in z.files})


def embed_encoded(encoder: ImageEncoder, blobs, chunk: int = 1024) -> np.ndarray:
    """Embeddings (N, D) of encoded images, decoded a chunk at a time (never the whole catalogue at once)."""
    blobs = list(blobs)
    parts = [encode_images(encoder, decode_images(blobs[start : start + chunk]))[0]
             for start in range(0, len(blobs), chunk)]
    return np.concatenate(parts) if parts else np.zeros((0, encoder.config.embed_dim), np.float32)


def view_features(encoder: ImageEncoder, item_ids: np.ndarray, views) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(item_emb (N, D), view_emb (M, D), view_item_row (M,)) of the items `item_ids` (sorted) from their shop
    views (an `item_views` table): an item's embedding is the L2-normalised mean of its views' embeddings."""
    view_emb = embed_encoded(encoder, views["image"])
    view_rows = np.searchsorted(item_ids, views["item_id"].to_numpy(np.int64))
    sums = np.zeros((len(item_ids), view_emb.shape[1]), np.float32)
    np.add.at(sums, view_rows, view_emb)
    item_emb = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-8)
    return item_emb, view_emb, view_rows


def compute_features(encoder: ImageEncoder, world: World) -> CatalogueFeatures:
    items = world.items.sort_values("item_id")
    item_ids = items["item_id"].to_numpy(np.int64)
    item_emb, view_emb, view_rows = view_features(encoder, item_ids, world.item_views)

    def photos(split: str) -> tuple[np.ndarray, np.ndarray]:
        q = world.queries_of(split)
        emb = embed_encoded(encoder, q["image"])
        return emb, np.searchsorted(item_ids, q["target_item_id"].to_numpy(np.int64))

    train_emb, train_rows = photos("train")
    test_emb, test_rows = photos("test")
    return CatalogueFeatures(
        item_ids=item_ids, item_category=items["category"].to_numpy(np.int64), item_emb=item_emb.astype(np.float32),
        view_emb=view_emb, view_item_row=view_rows.astype(np.int64),
        train_photo_emb=train_emb, train_photo_item_row=train_rows.astype(np.int64),
        test_photo_emb=test_emb, test_photo_item_row=test_rows.astype(np.int64),
    )
