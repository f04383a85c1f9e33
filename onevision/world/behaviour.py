"""The world's ground-truth user behaviour: how visually close two items are, how much a user likes
an item, and the click/order probabilities of a ranked list.

This is the oracle. Training code never calls it; the evaluation harness uses it to compute offline
CTR/CVR proxies of any ranked list, and the simulator uses it to sample logged clicks and orders.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CatalogueFacts:
    """Per-item attributes the behaviour model needs (aligned arrays indexed by item row)."""

    item_ids: np.ndarray
    category: np.ndarray
    brand: np.ndarray
    price_band: np.ndarray
    colour: np.ndarray
    family_id: np.ndarray

    def rows(self, item_ids: np.ndarray) -> np.ndarray:
        """Row index of each item id (raises KeyError on unknown ids)."""
        order = np.argsort(self.item_ids)
        pos = np.searchsorted(self.item_ids[order], item_ids)
        pos = np.clip(pos, 0, len(order) - 1)
        rows = order[pos]
        bad = self.item_ids[rows] != item_ids
        if np.any(bad):
            raise KeyError(f"unknown item ids: {np.unique(np.asarray(item_ids)[bad])[:5].tolist()}")
        return rows


@dataclass(frozen=True)
class UserPreferences:
    user_ids: np.ndarray
    brand_pref: np.ndarray  # (U, n_brands), rows sum to 1
    category_pref: np.ndarray  # (U, n_categories)
    price_pref: np.ndarray  # (U, n_price_bands)

    def rows(self, user_ids: np.ndarray) -> np.ndarray:
        order = np.argsort(self.user_ids)
        pos = np.clip(np.searchsorted(self.user_ids[order], user_ids), 0, len(order) - 1)
        rows = order[pos]
        if np.any(self.user_ids[rows] != user_ids):
            raise KeyError("unknown user ids")
        return rows


def visual_match(cat: CatalogueFacts, target_rows: np.ndarray, shown_rows: np.ndarray) -> np.ndarray:
    """How well a shown item answers a photo of the target: 1 for the item itself, less for its
    near-duplicates, little for the same category, nothing otherwise. Shapes broadcast."""
    same_item = target_rows == shown_rows
    same_family = cat.family_id[target_rows] == cat.family_id[shown_rows]
    same_colour = cat.colour[target_rows] == cat.colour[shown_rows]
    same_category = cat.category[target_rows] == cat.category[shown_rows]
    return np.select(
        [same_item, same_family & same_colour, same_family, same_category & same_colour, same_category],
        [1.0, 0.6, 0.45, 0.25, 0.12],
        default=0.0,
    )


def preference_score(prefs: UserPreferences, cat: CatalogueFacts, user_rows: np.ndarray, item_rows: np.ndarray) -> np.ndarray:
    """Centred affinity of users for items (brand and price band), about 0 for an indifferent user."""
    n_brands = prefs.brand_pref.shape[1]
    n_bands = prefs.price_pref.shape[1]
    brand = np.sqrt(n_brands * prefs.brand_pref[user_rows, cat.brand[item_rows]]) - 0.8
    price = np.sqrt(n_bands * prefs.price_pref[user_rows, cat.price_band[item_rows]]) - 0.8
    return 1.2 * brand + 0.8 * price


def position_bias(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(k) + 2.0)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass(frozen=True)
class ListProbabilities:
    click: np.ndarray  # (Q, K) probability each slot is clicked
    order: np.ndarray  # (Q, K) probability each slot is ordered (includes the click)


class ClickOrderModel:
    """P(click) and P(order) for every slot of ranked lists, given who searched for what."""

    def __init__(self, catalogue: CatalogueFacts, prefs: UserPreferences):
        self.catalogue = catalogue
        self.prefs = prefs

    def probabilities(self, user_ids: np.ndarray, target_item_ids: np.ndarray, ranked_item_ids: np.ndarray) -> ListProbabilities:
        """ranked_item_ids: (Q, K) item ids; -1 marks an empty slot (probability 0)."""
        ranked = np.asarray(ranked_item_ids, dtype=np.int64)
        if ranked.ndim != 2 or ranked.shape[0] != len(user_ids) or len(user_ids) != len(target_item_ids):
            raise ValueError(
                f"expected ranked_item_ids of shape (Q, K) with Q = len(user_ids) = len(target_item_ids); "
                f"got {ranked.shape}, {len(user_ids)}, {len(target_item_ids)}"
            )
        empty = ranked < 0
        shown_rows = self.catalogue.rows(np.where(empty, self.catalogue.item_ids[0], ranked).ravel()).reshape(ranked.shape)
        target_rows = self.catalogue.rows(np.asarray(target_item_ids, dtype=np.int64))[:, None]
        user_rows = self.prefs.rows(np.asarray(user_ids, dtype=np.int64))[:, None]
        match = visual_match(self.catalogue, target_rows, shown_rows)
        pref = preference_score(self.prefs, self.catalogue, user_rows, shown_rows)
        attract = _sigmoid(-3.2 + 4.5 * match + 1.0 * pref)
        click = position_bias(ranked.shape[1])[None, :] * attract
        buy = _sigmoid(-3.0 + 2.5 * match + 1.2 * pref)
        click = np.where(empty, 0.0, click)
        return ListProbabilities(click=click, order=click * np.where(empty, 0.0, buy))
