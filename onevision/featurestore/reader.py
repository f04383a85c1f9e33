"""The online reader: `get_online_features` for a batch of user ids under a deadline. A read that fails (store
down, repo missing) or misses the deadline leaves its users unresolved, to be served non-personalised; every
outcome is counted for the servers' metrics."""
from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from onevision.featurestore.repo import FeatureRepoConfig, feature_refs, open_store
from onevision.featurestore.rows import FIELDS, USER_ID

log = logging.getLogger(__name__)

COUNTERS: tuple[str, ...] = ("lookups", "hits", "unknown", "timeouts", "errors")


@dataclass
class FeatureCounters:
    """Users asked of the store (lookups) and what came of them: a row (hits), no row (unknown), the read
    missed its deadline (timeouts) or failed (errors). Thread-safe; `snapshot()` is what metrics read."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **deltas: int) -> None:
        with self._lock:
            for name, n in deltas.items():
                self.counts[name] += n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)


@dataclass(frozen=True)
class Fetched:
    rows: dict[int, dict[str, Any]]  # user id -> {field: value}, users with a row only
    ok: bool  # False: the read failed or timed out, and users without a row are unresolved, not unknown


class OnlineReader:
    """Reads the user_features view of a repo; one worker thread does the reads so a hung store cannot hold a
    request past `config.timeout_ms`."""

    def __init__(self, config: FeatureRepoConfig, counters: FeatureCounters | None = None):
        self.config = config
        self.counters = counters or FeatureCounters()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="onevision-features")
        self._store: Any = None
        self._store_lock = threading.Lock()

    def _read(self, user_ids: list[int]) -> dict[int, dict[str, Any]]:
        with self._store_lock:
            if self._store is None:
                self._store = open_store(self.config)
            store = self._store
        data = store.get_online_features(features=feature_refs(), entity_rows=[{USER_ID: u} for u in user_ids]).to_dict()
        rows = {}
        for i, u in enumerate(data[USER_ID]):
            row = {name: data[name][i] for name in FIELDS}
            if row["known"] is not None and all(v is not None for v in row.values()):
                rows[int(u)] = row
        return rows

    def fetch(self, user_ids: Sequence[int], uncounted: Sequence[int] = ()) -> Fetched:
        """Rows of `user_ids`; `uncounted` ids (the population row) are read in the same call but not counted."""
        counted = [int(u) for u in dict.fromkeys(user_ids)]
        ids = counted + [int(u) for u in uncounted if int(u) not in counted]
        if not ids:
            return Fetched({}, True)
        n = len(counted)
        future = self._pool.submit(self._read, ids)
        try:
            rows = future.result(timeout=self.config.timeout_ms / 1000)
        except FutureTimeout:
            self.counters.add(lookups=n, timeouts=n)
            log.warning("feature store read of %d users missed its %d ms deadline", len(ids), self.config.timeout_ms)
            return Fetched({}, False)
        except Exception as exc:  # noqa: BLE001 - any failure of the store means: serve without it
            self.counters.add(lookups=n, errors=n)
            log.warning("feature store read failed (%s: %s); serving non-personalised", type(exc).__name__, exc)
            return Fetched({}, False)
        hits = sum(u in rows for u in counted)
        self.counters.add(lookups=n, hits=hits, unknown=n - hits)
        return Fetched(rows, True)

    def warm_up(self, timeout_s: float = 30.0) -> bool:
        """One uncounted read with a generous deadline (Feast loads its registry on the first); False when the
        store is not reachable (yet)."""
        from onevision.featurestore.rows import POPULATION_USER_ID

        try:
            self._pool.submit(self._read, [POPULATION_USER_ID]).result(timeout=timeout_s)
        except Exception:  # noqa: BLE001 - the requests' counters report an unreachable store
            return False
        return True

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
