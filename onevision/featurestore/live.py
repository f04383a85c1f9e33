"""`FeastUserFeatures`: the `UserFeatureSource` the servers use with a feature repo. Every call resolves its users
through a short-lived per-user cache (`max_age_s`, so one request's several calls read the store once and a
re-materialised row is served within seconds) backed by the online reader.

Unknown users, and users whose read failed or timed out, get the population row: the non-personalised path.
Failed reads are not cached (the next request tries again); the population row falls back to the bundle's
snapshot while the store is unreachable.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from onevision.featurestore.reader import FeatureCounters, OnlineReader
from onevision.featurestore.repo import FeatureRepoConfig
from onevision.featurestore.rows import POPULATION_USER_ID, OnlineUserFeatures, population_row
from onevision.userfeatures import UserFeatureTable

DEFAULT_MAX_AGE_S = 2.0
MAX_CACHED_USERS = 100_000


class FeastUserFeatures:
    def __init__(self, reader: OnlineReader, fallback_population: Mapping[str, Any],
                 max_age_s: float = DEFAULT_MAX_AGE_S, clock: Callable[[], float] = time.monotonic):
        if max_age_s < 0:
            raise ValueError(f"max_age_s must be >= 0, got {max_age_s}")
        self.reader = reader
        self.fallback_population = fallback_population
        self.max_age_s = max_age_s
        self._clock = clock
        self._rows: dict[int, tuple[float, dict[str, Any] | None]] = {}  # user -> (expires, row or None: unknown)
        self._population: tuple[float, Mapping[str, Any]] = (-np.inf, fallback_population)
        self._lock = threading.Lock()

    @property
    def counters(self) -> FeatureCounters:
        return self.reader.counters

    def lookup(self, user_ids: np.ndarray) -> OnlineUserFeatures:
        """The rows of `user_ids` as of now (fetching what the cache does not hold fresh). The read runs outside
        the lock, so a slow store delays only the requests that need it, each by at most its own deadline."""
        ids = [int(u) for u in dict.fromkeys(np.asarray(user_ids, np.int64).reshape(-1).tolist()) if u >= 0]
        with self._lock:
            now = self._clock()
            cached = {u: self._rows[u][1] for u in ids if u in self._rows and self._rows[u][0] > now}
            population = self._population[1] if self._population[0] > now else None
        stale = [u for u in ids if u not in cached]
        fresh: dict[int, dict[str, Any] | None] = {}
        if stale or population is None:
            fetched = self.reader.fetch(stale, [POPULATION_USER_ID] if population is None else [])
            fresh = {u: fetched.rows.get(u) for u in stale}
            with self._lock:
                expires = now + self.max_age_s
                if population is None:
                    population = fetched.rows.get(POPULATION_USER_ID) or self.fallback_population
                    self._population = (expires, population)
                if fetched.ok and self.max_age_s > 0:
                    self._rows.update({u: (expires, row) for u, row in fresh.items()})
                if len(self._rows) > MAX_CACHED_USERS:
                    self._rows = {u: e for u, e in self._rows.items() if e[0] > now}
        rows = {**cached, **fresh}
        return OnlineUserFeatures({u: r for u, r in rows.items() if r is not None}, population)

    def known(self, user_ids: np.ndarray) -> np.ndarray:
        return self.lookup(user_ids).known(user_ids)

    def affinity(self, attribute: str, user_ids: np.ndarray, values: np.ndarray, signal: str = "click",
                 exclude_query_ids: np.ndarray | None = None) -> np.ndarray:
        return self.lookup(user_ids).affinity(attribute, user_ids, values, signal, exclude_query_ids)

    def profile(self, user_ids: np.ndarray, exclude_query_ids: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.lookup(user_ids).profile(user_ids, exclude_query_ids)

    def history(self, user_ids: np.ndarray, n: int | None = None,
                exclude_query_ids: np.ndarray | None = None) -> np.ndarray:
        return self.lookup(user_ids).history(user_ids, n, exclude_query_ids)

    def features(self, user_ids: np.ndarray, exclude_query_ids: np.ndarray | None = None) -> np.ndarray:
        return self.lookup(user_ids).features(user_ids, exclude_query_ids)

    def close(self) -> None:
        self.reader.close()


FEATURE_REPO_ENV = "ONEVISION_FEATURE_REPO"
FEATURE_TIMEOUT_ENV = "ONEVISION_FEATURE_TIMEOUT_MS"
FEATURE_MAX_AGE_ENV = "ONEVISION_FEATURE_MAX_AGE_S"


@dataclass
class FeastFeatures:
    """A server's choice of Feast as its user-feature source (None anywhere: the bundle's frozen snapshot), and
    the counters every source it opens reports to."""

    repo_dir: str
    timeout_ms: int | None = None  # None: the repo's default (FeatureRepoConfig.timeout_ms)
    max_age_s: float = DEFAULT_MAX_AGE_S
    counters: FeatureCounters = field(default_factory=FeatureCounters)

    def open(self, snapshot: UserFeatureTable) -> FeastUserFeatures:
        reader = OnlineReader(FeatureRepoConfig.load(self.repo_dir, self.timeout_ms), self.counters)
        reader.warm_up()
        return FeastUserFeatures(reader, population_row(snapshot), self.max_age_s)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> FeastFeatures | None:
        """From ONEVISION_FEATURE_REPO (unset or empty: None), ONEVISION_FEATURE_TIMEOUT_MS and
        ONEVISION_FEATURE_MAX_AGE_S."""
        repo = env.get(FEATURE_REPO_ENV, "")
        if not repo:
            return None
        timeout, max_age = env.get(FEATURE_TIMEOUT_ENV, ""), env.get(FEATURE_MAX_AGE_ENV, "")
        return cls(repo, int(timeout) if timeout else None, float(max_age) if max_age else DEFAULT_MAX_AGE_S)
