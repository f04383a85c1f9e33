"""The online rows: everything the serving paths read about one user, precomputed from a `UserFeatureTable`
(no leave-one-out: serving never excludes a query), and `OnlineUserFeatures`, the lookup built from fetched rows
that answers the same calls as the table with the same numbers.

One row per known user, plus the population row under `POPULATION_USER_ID`: what the table answers for an
unknown user (zero lifts, declared category -1, the mean price sensitivity, the population-average features).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from onevision.userfeatures import ATTRIBUTES, SIGNALS, UserFeatureTable

if TYPE_CHECKING:
    import pandas as pd

USER_ID = "user_id"  # the entity's join key
POPULATION_USER_ID = -1  # the row unknown users get (never a real user id: ids are >= 0)
DEFAULT_HISTORY = 16  # clicked items kept per user (at least the table's history_len)

FLOAT_ARRAY, INT_ARRAY, FLOAT, INT = "float_array", "int_array", "float", "int"


def lift_field(signal: str, attribute: str) -> str:
    return f"{signal}_lift_{attribute}"


# field name -> kind; the feature view's schema (onevision.featurestore.repo) is derived from it
FIELDS: dict[str, str] = {
    **{lift_field(s, a): FLOAT_ARRAY for s in SIGNALS for a in ATTRIBUTES},
    "declared_category": INT, "price_sensitivity": FLOAT, "log_queries": FLOAT,
    "history": INT_ARRAY, "features": FLOAT_ARRAY, "known": INT,
}


def online_rows(table: UserFeatureTable, history_len: int = DEFAULT_HISTORY,
                user_ids: np.ndarray | None = None) -> pd.DataFrame:
    """The population row, then one row per user of `table` (or of `user_ids`): USER_ID plus every field of
    FIELDS, arrays as numpy arrays (float32 / int64)."""
    import pandas as pd

    users = table.user_ids if user_ids is None else np.asarray(user_ids, np.int64).reshape(-1)
    ids = np.concatenate([[POPULATION_USER_ID], users]).astype(np.int64)
    n = max(history_len, table.config.history_len)
    cols: dict[str, Any] = {USER_ID: ids}
    for signal in SIGNALS:
        for attr in ATTRIBUTES:
            values = np.broadcast_to(np.arange(table.vocab[attr]), (len(ids), table.vocab[attr]))
            cols[lift_field(signal, attr)] = list(table.affinity(attr, ids, values, signal=signal))
    declared, sensitivity, log_queries = table.profile(ids)
    cols.update(declared_category=declared.astype(np.int64), price_sensitivity=sensitivity.astype(np.float32),
                log_queries=log_queries.astype(np.float32), history=list(table.history(ids, n)),
                features=list(table.features(ids)), known=table.known(ids).astype(np.int64))
    return pd.DataFrame(cols)


def population_row(table: UserFeatureTable, history_len: int = DEFAULT_HISTORY) -> dict[str, Any]:
    """What `table` answers for an unknown user, as a row."""
    return _row_dicts(online_rows(table, history_len, np.zeros(0, np.int64)))[POPULATION_USER_ID]


def _row_dicts(frame: pd.DataFrame) -> dict[int, dict[str, Any]]:
    return {int(r[USER_ID]): {f: r[f] for f in FIELDS} for r in frame.to_dict("records")}


class OnlineUserFeatures:
    """A `UserFeatureSource` over fetched rows (user id -> {field: value}); users without a row get the
    population row. It answers exactly what the table the rows came from answers for the same users."""

    max_age_s: float | None = None

    def __init__(self, rows: Mapping[int, Mapping[str, Any]], population: Mapping[str, Any]):
        self.rows = {int(u): r for u, r in rows.items() if int(u) != POPULATION_USER_ID}
        self.population = population

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> OnlineUserFeatures:
        """From `online_rows`' frame (which holds the population row)."""
        rows = _row_dicts(frame)
        if POPULATION_USER_ID not in rows:
            raise ValueError(f"online rows lack the population row ({USER_ID} = {POPULATION_USER_ID})")
        return cls(rows, rows[POPULATION_USER_ID])

    def _column(self, user_ids: np.ndarray, name: str, dtype: type) -> np.ndarray:
        ids = np.asarray(user_ids, np.int64).reshape(-1)
        values = [self.rows.get(int(u), self.population)[name] if u >= 0 else self.population[name] for u in ids]
        if FIELDS[name] in (FLOAT_ARRAY, INT_ARRAY):
            width = len(self.population[name])
            return np.stack([np.asarray(v, dtype) for v in values]) if values else np.zeros((0, width), dtype)
        return np.asarray(values, dtype).reshape(len(ids))

    @staticmethod
    def _no_leave_one_out(exclude_query_ids: Iterable[int] | None) -> None:
        if exclude_query_ids is not None:
            raise ValueError("online user features cannot leave queries out (exclude_query_ids is for training rows)")

    def known(self, user_ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(user_ids, np.int64).reshape(-1)
        return np.array([u >= 0 and int(u) in self.rows for u in ids], bool)

    def affinity(self, attribute: str, user_ids: np.ndarray, values: np.ndarray, signal: str = "click",
                 exclude_query_ids: np.ndarray | None = None) -> np.ndarray:
        self._no_leave_one_out(exclude_query_ids)
        if attribute not in ATTRIBUTES or signal not in SIGNALS:
            raise ValueError(
                f"attribute must be one of {ATTRIBUTES} and signal one of {SIGNALS}, got {attribute!r}, {signal!r}"
            )
        lift = self._column(user_ids, lift_field(signal, attribute), np.float32)
        values = np.asarray(values, np.int64)
        if values.ndim != 2 or values.shape[0] != len(lift):
            raise ValueError(f"values must be a (B, K) matrix with B = {len(lift)} users, got shape {values.shape}")
        if values.size and (values.min() < 0 or values.max() >= lift.shape[1]):
            raise ValueError(f"{attribute} must lie in [0, {lift.shape[1]}), got values in "
                             f"[{values.min()}, {values.max()}]")
        return np.take_along_axis(lift, values, axis=1)

    def profile(self, user_ids: np.ndarray, exclude_query_ids: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self._no_leave_one_out(exclude_query_ids)
        return (self._column(user_ids, "declared_category", np.int64),
                self._column(user_ids, "price_sensitivity", np.float32),
                self._column(user_ids, "log_queries", np.float32))

    def history(self, user_ids: np.ndarray, n: int | None = None,
                exclude_query_ids: np.ndarray | None = None) -> np.ndarray:
        """int64 (B, n), n at most the stored length (the default)."""
        self._no_leave_one_out(exclude_query_ids)
        hist = self._column(user_ids, "history", np.int64)
        n = hist.shape[1] if n is None else n
        if not 1 <= n <= hist.shape[1]:
            raise ValueError(f"history length must lie in [1, {hist.shape[1]}] (the rows keep {hist.shape[1]} "
                             f"items; materialise with a longer history), got {n}")
        return hist[:, :n]

    def features(self, user_ids: np.ndarray, exclude_query_ids: np.ndarray | None = None) -> np.ndarray:
        self._no_leave_one_out(exclude_query_ids)
        return self._column(user_ids, "features", np.float32)
