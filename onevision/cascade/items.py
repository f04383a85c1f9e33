"""What the stages know about each catalogue item: attributes, embedding, train-click popularity."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from onevision.vision.features import CatalogueFeatures
    from onevision.world import World

ITEMS_FILE = "items.npz"


@dataclass(frozen=True)
class ItemTable:
    item_ids: np.ndarray  # int64 (N,), sorted
    brand: np.ndarray  # int64 (N,)
    price_band: np.ndarray
    category: np.ndarray
    clicks: np.ndarray  # float64 (N,): clicks in the training split's impressions
    emb: np.ndarray  # float32 (N, D), L2-normalised

    def __post_init__(self) -> None:
        n = len(self.item_ids)
        if np.any(np.diff(self.item_ids) <= 0):
            raise ValueError("ItemTable.item_ids must be sorted and unique")
        for name in ("brand", "price_band", "category", "clicks"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"ItemTable.{name} must have shape ({n},), got {getattr(self, name).shape}")
        if self.emb.ndim != 2 or len(self.emb) != n:
            raise ValueError(f"ItemTable.emb must have shape ({n}, D), got {self.emb.shape}")

    @classmethod
    def fit(cls, world: World, features: CatalogueFeatures, split: str = "train") -> ItemTable:
        items = world.items.sort_values("item_id")
        item_ids = items["item_id"].to_numpy(np.int64)
        if not np.array_equal(item_ids, features.item_ids):
            raise ValueError(
                f"catalogue features cover {len(features.item_ids)} items but the world has {len(item_ids)}: "
                "recompute the features for this world"
            )
        split_ids = world.queries_of(split)["query_id"]
        imp = world.impressions
        clicked = imp.loc[imp["clicked"].to_numpy(bool) & imp["query_id"].isin(split_ids).to_numpy(), "item_id"]
        clicks = np.bincount(np.searchsorted(item_ids, clicked.to_numpy(np.int64)), minlength=len(item_ids))
        return cls(
            item_ids=item_ids,
            brand=items["brand"].to_numpy(np.int64),
            price_band=items["price_band"].to_numpy(np.int64),
            category=items["category"].to_numpy(np.int64),
            clicks=clicks.astype(np.float64),
            emb=features.item_emb.astype(np.float32),
        )

    def with_items(self, new: ItemTable) -> ItemTable:
        """This table and `new`'s items (a catalogue refresh), sorted by id; the ids must be new."""
        clash = np.intersect1d(self.item_ids, new.item_ids)
        if len(clash):
            raise ValueError(f"items already in the item table: {clash[:5].tolist()}")
        order = np.argsort(np.concatenate([self.item_ids, new.item_ids]), kind="stable")
        return ItemTable(**{name: np.concatenate([getattr(self, name), getattr(new, name)])[order]
                            for name in self.__dataclass_fields__})

    @property
    def n_price_bands(self) -> int:
        return int(self.price_band.max()) + 1 if len(self.price_band) else 1

    @property
    def log_popularity(self) -> np.ndarray:
        """Smoothed log click share, float32 (N,)."""
        return np.log((self.clicks + 1.0) / (self.clicks.sum() + len(self.clicks))).astype(np.float32)

    def rows(self, item_ids: np.ndarray) -> np.ndarray:
        """Row of each id; -1 (padding) maps to row 0, callers mask it."""
        ids = np.asarray(item_ids, np.int64)
        rows = np.clip(np.searchsorted(self.item_ids, ids), 0, len(self.item_ids) - 1)
        bad = (self.item_ids[rows] != ids) & (ids >= 0)
        if bad.any():
            raise KeyError(f"item ids not in the catalogue: {np.unique(ids[bad])[:5].tolist()}")
        return np.where(ids >= 0, rows, 0)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.savez(directory / ITEMS_FILE, **self.__dict__)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> ItemTable:
        path = Path(directory) / ITEMS_FILE
        if not path.exists():
            raise FileNotFoundError(f"item table missing: {path}")
        with np.load(path) as z:
            return cls(**{k: z[k] for k in z.files})
