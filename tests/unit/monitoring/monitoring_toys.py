"""Small in-process retrievers for monitoring tests: a pixel-feature visual retriever (good on clean
photos, worse on degraded ones), optionally personalised with the users' training-time preferences
(good until preferences drift). Arms get SID prefixes (the item's category) and a pixel embedder."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from monitoring.arms import RetrieverArm
from onevision.contracts import Ranking
from onevision.evaluation import RandomRetriever
from onevision.world import load_world
from onevision.world.behaviour import preference_score
from onevision.world.render import decode_image


def pixel_features(images: np.ndarray) -> np.ndarray:
    """8x8 mean-pooled colours (centred) + a 64-bin colour histogram, L2-normalised."""
    x = images.astype(np.float32) / 255.0
    b, s = x.shape[0], x.shape[1] // 8
    pooled = x.reshape(b, 8, s, 8, s, 3).mean(axis=(2, 4)).reshape(b, -1)
    q = (x * 3.999).astype(np.int64)
    idx = (q[..., 0] * 16 + q[..., 1] * 4 + q[..., 2]).reshape(b, -1)
    hist = np.stack([np.bincount(i, minlength=64) for i in idx]).astype(np.float32)
    hist /= hist.sum(axis=1, keepdims=True)
    f = np.concatenate([pooled - pooled.mean(axis=1, keepdims=True), 2 * np.sqrt(hist)], axis=1)
    return f / np.linalg.norm(f, axis=1, keepdims=True)


class PixelRetriever:
    name = "pixel"

    def __init__(self, world_dir: Path, personalise: float = 0.0):
        world = load_world(world_dir)
        views = world.item_views
        self.view_items = views["item_id"].to_numpy(np.int64)
        self.item_ids = np.unique(self.view_items)
        self.view_features = pixel_features(np.stack([decode_image(b) for b in views["image"]]))
        self.personalise = personalise
        self.behaviour = world.behaviour  # training-time preferences: stale once preferences drift

    def retrieve(self, images: np.ndarray, user_ids: np.ndarray | None, k: int) -> Ranking:
        sims = pixel_features(images) @ self.view_features.T
        best = np.full((len(images), len(self.item_ids)), -np.inf)
        col = np.searchsorted(self.item_ids, self.view_items)
        for j in range(len(self.item_ids)):
            best[:, j] = sims[:, col == j].max(axis=1)
        if self.personalise and user_ids is not None:
            b = self.behaviour
            user_rows = b.prefs.rows(np.asarray(user_ids))[:, None]
            item_rows = b.catalogue.rows(self.item_ids)[None, :]
            best = best + self.personalise * preference_score(b.prefs, b.catalogue, user_rows, item_rows)
        top = np.argsort(-best, axis=1, kind="stable")[:, :k]
        return Ranking(self.item_ids[top], np.take_along_axis(best, top, axis=1).astype(np.float32))


def category_prefixes(world_dir: Path) -> dict[int, int]:
    items = load_world(world_dir).items
    return dict(zip(items["item_id"].tolist(), items["category"].tolist()))


def pixel_arm(world_dir: Path, personalise: float = 0.1, name: str = "pixel") -> RetrieverArm:
    return RetrieverArm(PixelRetriever(world_dir, personalise), name=name,
                        sid_prefix_of=category_prefixes(world_dir), embedder=pixel_features)


def random_arm(world_dir: Path, seed: int = 0) -> RetrieverArm:
    items = load_world(world_dir).items["item_id"].to_numpy(np.int64)
    return RetrieverArm(RandomRetriever(items, seed=seed), name="random", sid_prefix_of=category_prefixes(world_dir),
                        embedder=pixel_features)
