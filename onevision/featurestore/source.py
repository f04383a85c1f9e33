"""`UserFeatureSource`: what the serving paths of both arms read about users, wherever the numbers come from
(the bundle's frozen `UserFeatureTable`, or the online rows of a feature store)."""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class UserFeatureSource(Protocol):
    """The calls `UserContext.build`, `attribute_affinity` and the cascade's `user_item_features` make.
    `exclude_query_ids` (leave-one-out) only exists for training rows; an online source rejects it."""

    # How long a consumer may keep what it derived from these features (seconds); None: forever.
    max_age_s: float | None

    def known(self, user_ids: np.ndarray) -> np.ndarray: ...

    def affinity(self, attribute: str, user_ids: np.ndarray, values: np.ndarray, signal: str = "click",
                 exclude_query_ids: np.ndarray | None = None) -> np.ndarray: ...

    def profile(self, user_ids: np.ndarray, exclude_query_ids: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...

    def history(self, user_ids: np.ndarray, n: int | None = None,
                exclude_query_ids: np.ndarray | None = None) -> np.ndarray: ...

    def features(self, user_ids: np.ndarray, exclude_query_ids: np.ndarray | None = None) -> np.ndarray: ...
