"""Training examples from the logged policy: each split query's photo embedding, user and slate with
its clicks and orders, plus unshown candidates sampled as negatives."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from onevision.cascade.candidates import base_features
from onevision.cascade.items import ItemTable

if TYPE_CHECKING:
    from onevision.vision.encoder import ImageEncoder
    from onevision.world import World


@dataclass(frozen=True)
class LoggedQueries:
    query_ids: np.ndarray  # int64 (Q,)
    user_ids: np.ndarray  # int64 (Q,)
    ts: np.ndarray  # int64 (Q,)
    emb: np.ndarray  # float32 (Q, D): the query photos through the encoder
    slate: np.ndarray  # int64 (Q, S): items shown, -1 padded
    clicked: np.ndarray  # bool (Q, S)
    ordered: np.ndarray  # bool (Q, S)

    def __len__(self) -> int:
        return len(self.query_ids)

    def holdout(self, fraction: float) -> np.ndarray:
        """bool (Q,): the latest `fraction` of the queries by time, for early stopping."""
        n = int(round(fraction * len(self)))
        if n >= len(self):
            raise ValueError(f"holdout fraction {fraction} leaves none of the {len(self)} queries to train on")
        out = np.zeros(len(self), bool)
        out[np.lexsort((self.query_ids, self.ts))[len(self) - n :]] = True
        return out

    @classmethod
    def from_world(cls, world: World, encoder: ImageEncoder, split: str = "train", batch_size: int = 256,
                   progress: bool = True) -> LoggedQueries:
        from tqdm import tqdm

        from onevision.vision.encoder import encode_images
        from onevision.vision.images import decode_images

        q = world.queries_of(split)
        if q.empty:
            raise ValueError(f"split '{split}' of {world.root} has no queries to train on")
        chunks = []
        starts = range(0, len(q), 1024)
        for start in tqdm(starts, desc=f"encode {split} photos", unit="chunk", leave=False, disable=not progress):
            images = decode_images(q["image"].iloc[start : start + 1024].tolist())
            chunks.append(encode_images(encoder, images, batch_size)[0])
        query_ids = q["query_id"].to_numpy(np.int64)
        imp = world.impressions
        imp = imp[imp["query_id"].isin(query_ids).to_numpy()]
        row = row_of(query_ids, imp["query_id"].to_numpy(np.int64))
        pos = imp["position"].to_numpy(np.int64)
        width = int(pos.max()) + 1 if len(pos) else 1
        slate = np.full((len(q), width), -1, np.int64)
        clicked = np.zeros((len(q), width), bool)
        ordered = np.zeros((len(q), width), bool)
        slate[row, pos] = imp["item_id"].to_numpy(np.int64)
        clicked[row, pos] = imp["clicked"].to_numpy(bool)
        ordered[row, pos] = imp["ordered"].to_numpy(bool)
        return cls(query_ids, q["user_id"].to_numpy(np.int64), q["ts"].to_numpy(np.int64),
                   np.concatenate(chunks).astype(np.float32), slate, clicked, ordered)


def row_of(query_ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Position of each wanted id in query_ids (every wanted id is present)."""
    order = np.argsort(query_ids)
    return order[np.searchsorted(query_ids[order], wanted)]


def sample_unshown(candidates: np.ndarray, shown: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Per query, n candidate ids (B, N, -1 padded) that are not in `shown` (B, S), uniformly; -1 if too few."""
    if n == 0:
        return np.zeros((len(candidates), 0), np.int64)
    keys = rng.random(candidates.shape)
    blocked = (candidates[:, :, None] == shown[:, None, :]).any(axis=2) | (candidates < 0)
    keys[blocked] = np.inf
    take = min(n, candidates.shape[1])
    pick = np.argsort(keys, axis=1, kind="stable")[:, :take]
    out = np.where(np.isfinite(np.take_along_axis(keys, pick, 1)), np.take_along_axis(candidates, pick, 1), -1)
    return np.pad(out, ((0, 0), (0, n - take)), constant_values=-1)


def pair_base_features(emb: np.ndarray, items: ItemTable, item_ids: np.ndarray, top_cats: np.ndarray,
                       chunk: int = 256) -> np.ndarray:
    """Base features of arbitrary (query, item) pairs (Q, K), with the exact rank among all items, as the
    recall stage would have produced it."""
    rows = items.rows(item_ids)
    out = np.zeros((*item_ids.shape, 5), np.float32)
    for s in range(0, len(emb), chunk):
        full = emb[s : s + chunk] @ items.emb.T  # (c, N)
        r = rows[s : s + chunk]
        sim = np.take_along_axis(full, r, axis=1)
        rank = (full[:, None, :] > sim[:, :, None]).sum(axis=2)
        out[s : s + chunk] = base_features(sim, rank, full.max(axis=1), top_cats[s : s + chunk], r, items)
    return out


@dataclass(frozen=True)
class PairSet:
    """Logged (query, item) pairs: shown items with their click/order plus sampled negatives."""

    item_ids: np.ndarray  # int64 (Q, K), -1 where nothing
    clicked: np.ndarray  # bool (Q, K)
    ordered: np.ndarray  # bool (Q, K)

    @classmethod
    def build(cls, logged: LoggedQueries, negatives: np.ndarray) -> PairSet:
        q = len(logged)
        none = np.zeros((q, negatives.shape[1]), bool)
        return cls(np.concatenate([logged.slate, negatives], 1), np.concatenate([logged.clicked, none], 1),
                   np.concatenate([logged.ordered, none], 1))

    def labels(self, order_weight: float, holdout: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(mask (Q, K), label (R,), weight (R,), holdout (R,)) for the R present pairs; holdout (Q,) per query."""
        mask = self.item_ids >= 0
        y = self.clicked[mask].astype(np.float32)
        w = (1.0 + order_weight * self.ordered[mask]).astype(np.float32)
        return mask, y, w, np.broadcast_to(holdout[:, None], mask.shape)[mask]
