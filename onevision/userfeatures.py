"""Observable per-user features: profile, smoothed click/order/exposure affinities and recent click history.

Built from the users table and one split's logged impressions only (never `truth/` or the behaviour
model), so the cascade ranker and the generator see what a production system would see.

Affinity of a user for a value v of an item attribute (brand, price band, category) is the user's
smoothed share of clicks (or orders) on v, pulled towards the population's share by `smoothing`
pseudo-events; `affinity()` returns its log-lift over the population share (0 = indifferent). The
"exposure" signal is the user's share of what was shown to them, each impression weighted by its slot's
DCG discount: what the logging system chose for this user (its own personalisation included) is evidence of
taste that clicks alone are too few to give (about 10 clicks per user, against 10 shown slots per query).

Training rows must not see their own label: pass `exclude_query_ids` to `features`, `affinity`,
`profile` and `history` to compute them as if those queries had not been logged (leave-one-out) when
building training examples.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from onevision.world import World

AGE_BANDS = 5  # schema: age_band in [0, 5)
ATTRIBUTES: tuple[str, ...] = ("brand", "price_band", "category")
SIGNALS: tuple[str, ...] = ("click", "order", "exposure")
ARRAYS_FILE = "user_features.npz"
META_FILE = "user_features.json"
FORMAT_VERSION = 2
# what `from_impressions` reads of a production log (the join's and the replay's requests / impressions tables)
LOGGED_REQUEST_COLUMNS: tuple[str, ...] = ("request_id", "user_id", "ts")
LOGGED_IMPRESSION_COLUMNS: tuple[str, ...] = ("request_id", "position", "item_id", "clicked", "ordered")


@dataclass(frozen=True)
class UserFeatureConfig:
    smoothing: float = 5.0  # pseudo-events pulling a user's shares towards the population's
    history_len: int = 8  # default n of history()

    def __post_init__(self) -> None:
        if self.smoothing <= 0 or self.history_len < 1:
            raise ValueError(f"smoothing must be > 0 and history_len >= 1, got {self}")


@dataclass(frozen=True)
class EngagementLog:
    """Every clicked impression of the split, most recent first (ts, then slate position, descending)."""

    user_row: np.ndarray  # int64 (E,)
    query_id: np.ndarray  # int64 (E,)
    item_id: np.ndarray  # int64 (E,)
    ordered: np.ndarray  # bool (E,)
    brand: np.ndarray  # int64 (E,)
    price_band: np.ndarray
    category: np.ndarray

    def attribute(self, name: str) -> np.ndarray:
        return getattr(self, name)


@dataclass(frozen=True)
class ExposureLog:
    """Every shown impression of the split (clicked or not), with its slot's exposure weight."""

    user_row: np.ndarray  # int64 (X,)
    query_id: np.ndarray  # int64 (X,)
    weight: np.ndarray  # float64 (X,): exposure_weight(position)
    brand: np.ndarray  # int64 (X,)
    price_band: np.ndarray
    category: np.ndarray

    def attribute(self, name: str) -> np.ndarray:
        return getattr(self, name)

    @classmethod
    def empty(cls) -> ExposureLog:
        i = np.zeros(0, np.int64)
        return cls(i, i, np.zeros(0), i, i, i)


def exposure_weight(position: np.ndarray) -> np.ndarray:
    """How much a shown slot (0-based position) counts as exposure: the DCG discount 1 / log2(position + 2)."""
    return 1.0 / np.log2(np.asarray(position, np.float64) + 2.0)


def _check_range(name: str, values: np.ndarray, size: int) -> None:
    if len(values) and (values.min() < 0 or values.max() >= size):
        raise ValueError(f"{name} must lie in [0, {size}), got values in [{values.min()}, {values.max()}]")


class _Excluded(NamedTuple):
    batch: np.ndarray  # batch rows of excluded engagement-log entries
    index: np.ndarray  # their engagement-log indices
    exposure_batch: np.ndarray
    exposure_index: np.ndarray


def _entries_of(query_ids: np.ndarray, log_query_id: np.ndarray, by_query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(position in query_ids, log index) of every log entry of each query (by_query: the log sorted by query)."""
    sorted_q = log_query_id[by_query]
    lo, hi = np.searchsorted(sorted_q, query_ids, "left"), np.searchsorted(sorted_q, query_ids, "right")
    lengths = hi - lo
    batch = np.repeat(np.arange(len(query_ids)), lengths)
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return batch, by_query[np.repeat(lo, lengths) + offsets]


class UserFeatureTable:
    """A `onevision.featurestore.UserFeatureSource` frozen at fit time."""

    max_age_s: float | None = None  # what consumers derive from it may be kept forever

    def __init__(
        self,
        config: UserFeatureConfig,
        vocab: dict[str, int],
        user_ids: np.ndarray,
        age_band: np.ndarray,
        declared_category: np.ndarray,
        price_sensitivity: np.ndarray,
        split_query_ids: np.ndarray,
        split_query_user_row: np.ndarray,
        log: EngagementLog,
        exposure: ExposureLog | None = None,
    ):
        """`exposure`: the shown impressions (None: none logged, so every exposure affinity is 0)."""
        self.config = config
        self.vocab = {a: int(vocab[a]) for a in ATTRIBUTES}
        self.user_ids = np.asarray(user_ids, np.int64)
        if np.any(np.diff(self.user_ids) <= 0):
            raise ValueError("user_ids must be sorted and unique")
        self.age_band = np.asarray(age_band, np.int64)
        self.declared_category = np.asarray(declared_category, np.int64)
        self.price_sensitivity = np.asarray(price_sensitivity, np.float64)
        _check_range("age_band", self.age_band, AGE_BANDS)
        _check_range("declared_category", self.declared_category, self.vocab["category"])
        order = np.argsort(split_query_ids, kind="stable")
        self.split_query_ids = np.asarray(split_query_ids, np.int64)[order]
        self.split_query_user_row = np.asarray(split_query_user_row, np.int64)[order]
        self.log = log
        self.exposure = ExposureLog.empty() if exposure is None else exposure
        for a in ATTRIBUTES:
            _check_range(a, log.attribute(a), self.vocab[a])
            _check_range(f"exposure {a}", self.exposure.attribute(a), self.vocab[a])
        self._derive()

    # ---------------------------------------------------------------- construction
    @classmethod
    def fit(cls, world: World, split: str = "train",
            config: UserFeatureConfig = UserFeatureConfig()) -> UserFeatureTable:
        queries = world.queries_of(split)
        return cls.from_logs(world.users, world.items, queries, world.impressions, config, f"queries of split '{split}'")

    @classmethod
    def from_impressions(cls, requests: pd.DataFrame, impressions: pd.DataFrame, items: pd.DataFrame,
                         users: pd.DataFrame, config: UserFeatureConfig = UserFeatureConfig()) -> UserFeatureTable:
        """The table of what production logged: `requests` (request_id, user_id, ts) and their shown slots
        `impressions` (request_id, position, item_id, clicked, ordered), as the production-loop join and the A/B
        replay write them. Requests without a user in `users` (anonymous, -1, or new) carry no profile and are left
        out; request ids become query ids in (ts, request_id) order."""
        import pandas as pd

        for name, frame, cols in (("requests", requests, LOGGED_REQUEST_COLUMNS),
                                  ("impressions", impressions, LOGGED_IMPRESSION_COLUMNS)):
            missing = sorted(set(cols) - set(frame.columns))
            if missing:
                raise ValueError(f"logged {name} lack columns {missing} (expected {list(cols)})")
        req = requests[list(LOGGED_REQUEST_COLUMNS)]
        req = req[req["user_id"].isin(users["user_id"])].sort_values(["ts", "request_id"], kind="stable")
        query_of = pd.Series(np.arange(len(req), dtype=np.int64), index=req["request_id"].to_numpy())
        if query_of.index.has_duplicates:
            raise ValueError("logged requests repeat a request_id")
        queries = pd.DataFrame({"query_id": query_of.to_numpy(), "user_id": req["user_id"].to_numpy(np.int64),
                                "ts": req["ts"].to_numpy()})
        imp = impressions[impressions["request_id"].isin(query_of.index)]
        imp = pd.DataFrame({"query_id": query_of.reindex(imp["request_id"].to_numpy()).to_numpy(np.int64),
                            "position": imp["position"].to_numpy(np.int64),
                            "item_id": imp["item_id"].to_numpy(np.int64),
                            "clicked": imp["clicked"].to_numpy(bool), "ordered": imp["ordered"].to_numpy(bool)})
        return cls.from_logs(users, items, queries, imp, config, "logged requests")

    @classmethod
    def from_logs(cls, users: pd.DataFrame, items: pd.DataFrame, queries: pd.DataFrame, impressions: pd.DataFrame,
                  config: UserFeatureConfig = UserFeatureConfig(), what: str = "queries") -> UserFeatureTable:
        """The one computation behind `fit` and `from_impressions`: `queries` (query_id, user_id, ts) and
        `impressions` (query_id, position, item_id, clicked, ordered; rows of other queries are ignored)."""
        users = users.sort_values("user_id")
        items = items.sort_values("item_id")
        user_ids = users["user_id"].to_numpy(np.int64)
        q_users = queries["user_id"].to_numpy(np.int64)
        missing = ~np.isin(q_users, user_ids)
        if missing.any():
            raise ValueError(
                f"{what} name users missing from the users table: "
                f"{np.unique(q_users[missing])[:5].tolist()}"
            )
        shown = impressions[impressions["query_id"].isin(queries["query_id"]).to_numpy()]
        shown = shown.merge(queries[["query_id", "user_id"]], on="query_id", how="left")
        imp = shown[shown["clicked"].to_numpy(bool)]
        imp = imp.merge(queries[["query_id", "ts"]], on="query_id", how="left")
        imp = imp.sort_values(["ts", "query_id", "position"], ascending=False, kind="stable")
        item_ids = items["item_id"].to_numpy(np.int64)
        shown_rows = np.clip(np.searchsorted(item_ids, shown["item_id"].to_numpy(np.int64)), 0, max(len(item_ids) - 1, 0))
        if len(shown) and np.any(item_ids[shown_rows] != shown["item_id"].to_numpy(np.int64)):
            raise ValueError("impressions name items missing from the items table")
        rows = np.clip(np.searchsorted(item_ids, imp["item_id"].to_numpy(np.int64)), 0, max(len(item_ids) - 1, 0))
        attr = {a: items[a].to_numpy(np.int64) for a in ATTRIBUTES}
        vocab = {a: int(max(attr[a].max(initial=-1), 0) + 1) for a in ATTRIBUTES}
        vocab["category"] = max(vocab["category"], int(users["declared_category"].max()) + 1)
        log = EngagementLog(
            user_row=np.searchsorted(user_ids, imp["user_id"].to_numpy(np.int64)),
            query_id=imp["query_id"].to_numpy(np.int64),
            item_id=imp["item_id"].to_numpy(np.int64),
            ordered=imp["ordered"].to_numpy(bool),
            **{a: attr[a][rows] for a in ATTRIBUTES},
        )
        exposure = ExposureLog(
            user_row=np.searchsorted(user_ids, shown["user_id"].to_numpy(np.int64)),
            query_id=shown["query_id"].to_numpy(np.int64),
            weight=exposure_weight(shown["position"].to_numpy(np.int64)),
            **{a: attr[a][shown_rows] for a in ATTRIBUTES},
        )
        return cls(
            config, vocab, user_ids,
            users["age_band"].to_numpy(np.int64),
            users["declared_category"].to_numpy(np.int64),
            users["price_sensitivity"].to_numpy(np.float64),
            queries["query_id"].to_numpy(np.int64),
            np.searchsorted(user_ids, q_users),
            log,
            exposure,
        )

    def _derive(self) -> None:
        n_users = len(self.user_ids)
        log = self.log
        self._counts: dict[tuple[str, str], np.ndarray] = {}
        exp = self.exposure
        for signal in SIGNALS:
            for a in ATTRIBUTES:
                counts = np.zeros((n_users, self.vocab[a]), np.float64)
                if signal == "exposure":
                    np.add.at(counts, (exp.user_row, exp.attribute(a)), exp.weight)
                else:
                    mask = np.ones(len(log.user_row), bool) if signal == "click" else log.ordered
                    np.add.at(counts, (log.user_row[mask], log.attribute(a)[mask]), 1.0)
                self._counts[signal, a] = counts
        self._n_queries = np.bincount(self.split_query_user_row, minlength=n_users).astype(np.float64)
        # user rows of the log, grouped by user (most recent first inside each group)
        self._by_user = np.argsort(log.user_row, kind="stable")
        self._user_start = np.searchsorted(log.user_row[self._by_user], np.arange(n_users + 1))
        self._by_query = np.argsort(log.query_id, kind="stable")
        self._exposure_by_query = np.argsort(exp.query_id, kind="stable")
        self._known_rows = self._feature_rows(np.arange(n_users), None)
        self._fallback = self._known_rows.mean(0) if n_users else np.zeros(self.n_features, np.float32)
        self._fallback[-1] = 0.0  # the known flag

    # ---------------------------------------------------------------- lookups
    def _rows(self, user_ids: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Row of each user id and whether it is known; unknown rows point at 0 and must be masked."""
        ids = np.asarray(user_ids, np.int64).reshape(-1)
        if len(self.user_ids) == 0:
            return np.zeros(len(ids), np.int64), np.zeros(len(ids), bool)
        pos = np.clip(np.searchsorted(self.user_ids, ids), 0, len(self.user_ids) - 1)
        known = (self.user_ids[pos] == ids) & (ids >= 0)
        return np.where(known, pos, 0), known

    def known(self, user_ids: np.ndarray) -> np.ndarray:
        return self._rows(user_ids)[1]

    def _excluded_log(self, rows: np.ndarray, known: np.ndarray,
                      exclude_query_ids: np.ndarray | None) -> _Excluded:
        """What to leave out: the excluded query's clicks and shown slots by that user, as (batch row, log index)
        pairs of the engagement log and of the exposure log."""
        if exclude_query_ids is None:
            none = np.zeros(0, np.int64)
            return _Excluded(none, none, none, none)
        q = np.asarray(exclude_query_ids, np.int64).reshape(-1)
        if q.shape != rows.shape:
            raise ValueError(f"exclude_query_ids must have one entry per user id ({rows.shape}), got {q.shape}")
        batch, idx = _entries_of(q, self.log.query_id, self._by_query)
        keep = known[batch] & (self.log.user_row[idx] == rows[batch])
        exp_batch, exp_idx = _entries_of(q, self.exposure.query_id, self._exposure_by_query)
        exp_keep = known[exp_batch] & (self.exposure.user_row[exp_idx] == rows[exp_batch])
        return _Excluded(batch[keep], idx[keep], exp_batch[exp_keep], exp_idx[exp_keep])

    def _shares(self, signal: str, attribute: str, rows: np.ndarray, known: np.ndarray,
                excluded: _Excluded) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(the users' counts, smoothed shares, population shares), each (B, V), without the excluded engagement."""
        removed = np.zeros((len(rows), self.vocab[attribute]))
        if signal == "exposure":
            batch, idx = excluded.exposure_batch, excluded.exposure_index
            np.add.at(removed, (batch, self.exposure.attribute(attribute)[idx]), self.exposure.weight[idx])
        else:
            batch, idx = excluded.batch, excluded.index
            if signal == "order":
                batch, idx = batch[self.log.ordered[idx]], idx[self.log.ordered[idx]]
            np.add.at(removed, (batch, self.log.attribute(attribute)[idx]), 1.0)
        table = self._counts[signal, attribute]
        counts = np.where(known[:, None], table[rows], 0.0) - removed
        population = table.sum(0)[None, :] - removed
        prior = (population + 1.0) / (population.sum(1, keepdims=True) + self.vocab[attribute])
        a = self.config.smoothing
        return counts, (counts + a * prior) / (counts.sum(1, keepdims=True) + a), prior

    def _query_counts(self, rows: np.ndarray, known: np.ndarray, exclude_query_ids: np.ndarray | None) -> np.ndarray:
        """The users' query counts in the split (0 if unknown), less the excluded query when it is theirs."""
        n = np.where(known, self._n_queries[rows], 0.0)
        if exclude_query_ids is not None and len(self.split_query_ids):
            q = np.asarray(exclude_query_ids, np.int64).reshape(-1)
            pos = np.clip(np.searchsorted(self.split_query_ids, q), 0, len(self.split_query_ids) - 1)
            n = n - (known & (self.split_query_ids[pos] == q) & (self.split_query_user_row[pos] == rows))
        return n

    # ---------------------------------------------------------------- public features
    @property
    def feature_names(self) -> list[str]:
        names = [f"age_band={i}" for i in range(AGE_BANDS)]
        names += [f"declared_category={i}" for i in range(self.vocab["category"])]
        names.append("price_sensitivity")
        for signal in SIGNALS:
            for a in ATTRIBUTES:
                names += [f"{signal}_share_{a}={v}" for v in range(self.vocab[a])]
        return names + ["log_queries", "log_clicks", "log_orders", "known"]

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def _feature_rows(self, user_rows: np.ndarray, exclude_query_ids: np.ndarray | None) -> np.ndarray:
        rows = np.asarray(user_rows, np.int64)
        known = np.ones(len(rows), bool)
        excluded = self._excluded_log(rows, known, exclude_query_ids)
        parts = [
            np.eye(AGE_BANDS)[self.age_band[rows]],
            np.eye(self.vocab["category"])[self.declared_category[rows]],
            self.price_sensitivity[rows, None],
        ]
        totals = {}
        for signal in SIGNALS:
            for a in ATTRIBUTES:
                counts, shares, _ = self._shares(signal, a, rows, known, excluded)
                parts.append(shares)
                totals[signal] = counts.sum(1)
        n_queries = self._query_counts(rows, known, exclude_query_ids)
        parts += [np.log1p(n_queries)[:, None], np.log1p(totals["click"])[:, None], np.log1p(totals["order"])[:, None],
                  np.ones((len(rows), 1))]
        return np.concatenate(parts, axis=1).astype(np.float32)

    def features(self, user_ids: np.ndarray, exclude_query_ids: np.ndarray | None = None) -> np.ndarray:
        """float32 (B, F); unknown users (or -1) get the population-average row with known = 0."""
        rows, known = self._rows(user_ids)
        out = np.tile(self._fallback, (len(rows), 1))
        if known.any():
            ex = None if exclude_query_ids is None else np.asarray(exclude_query_ids, np.int64).reshape(-1)[known]
            out[known] = self._known_rows[rows[known]] if ex is None else self._feature_rows(rows[known], ex)
        return out

    def affinity(self, attribute: str, user_ids: np.ndarray, values: np.ndarray, signal: str = "click",
                 exclude_query_ids: np.ndarray | None = None) -> np.ndarray:
        """Log-lift of each user's smoothed share on `values` (B, K) of `attribute`; 0 for unknown users."""
        if attribute not in ATTRIBUTES or signal not in SIGNALS:
            raise ValueError(
                f"attribute must be one of {ATTRIBUTES} and signal one of {SIGNALS}, got {attribute!r}, {signal!r}"
            )
        values = np.asarray(values, np.int64)
        rows, known = self._rows(user_ids)
        if values.ndim != 2 or values.shape[0] != len(rows):
            raise ValueError(f"values must be a (B, K) matrix with B = {len(rows)} users, got shape {values.shape}")
        _check_range(attribute, values, self.vocab[attribute])
        excluded = self._excluded_log(rows, known, exclude_query_ids)
        _, shares, prior = self._shares(signal, attribute, rows, known, excluded)
        lift = np.log(shares / prior)
        return np.take_along_axis(lift, values, axis=1).astype(np.float32)

    def profile(self, user_ids: np.ndarray, exclude_query_ids: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(declared_category int64 (-1 unknown), price_sensitivity float32 (population mean if unknown),
        log1p(query count in the split) float32 (0 if unknown))."""
        rows, known = self._rows(user_ids)
        mean_sens = float(self.price_sensitivity.mean()) if len(self.price_sensitivity) else 0.5
        return (
            np.where(known, self.declared_category[rows], -1),
            np.where(known, self.price_sensitivity[rows], mean_sens).astype(np.float32),
            np.log1p(self._query_counts(rows, known, exclude_query_ids)).astype(np.float32),
        )

    def history(self, user_ids: np.ndarray, n: int | None = None,
                exclude_query_ids: np.ndarray | None = None) -> np.ndarray:
        """int64 (B, n): the user's last n clicked item ids, most recent first, -1 padded."""
        n = self.config.history_len if n is None else n
        if n < 1:
            raise ValueError(f"history length must be >= 1, got {n}")
        rows, known = self._rows(user_ids)
        ex = None if exclude_query_ids is None else np.asarray(exclude_query_ids, np.int64).reshape(-1)
        out = np.full((len(rows), n), -1, np.int64)
        for b in np.flatnonzero(known):
            idx = self._by_user[self._user_start[rows[b]] : self._user_start[rows[b] + 1]]
            if ex is not None:
                idx = idx[self.log.query_id[idx] != ex[b]]
            take = self.log.item_id[idx[:n]]
            out[b, : len(take)] = take
        return out

    # ---------------------------------------------------------------- persistence
    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {
            "user_ids": self.user_ids, "age_band": self.age_band, "declared_category": self.declared_category,
            "price_sensitivity": self.price_sensitivity, "split_query_ids": self.split_query_ids,
            "split_query_user_row": self.split_query_user_row,
            **{f"log_{k}": v for k, v in self.log.__dict__.items()},
            **{f"exposure_{k}": v for k, v in self.exposure.__dict__.items()},
        }
        np.savez(directory / ARRAYS_FILE, **arrays)
        meta = {"format_version": FORMAT_VERSION, "config": asdict(self.config), "vocab": self.vocab,
                "feature_names": self.feature_names}
        (directory / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> UserFeatureTable:
        directory = Path(directory)
        meta_path, arrays_path = directory / META_FILE, directory / ARRAYS_FILE
        for p in (meta_path, arrays_path):
            if not p.exists():
                raise FileNotFoundError(f"user feature table incomplete: {p} is missing")
        meta = json.loads(meta_path.read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{meta_path}: format_version {meta.get('format_version')}, expected {FORMAT_VERSION}")
        with np.load(arrays_path) as z:
            a = {k: z[k] for k in z.files}
        log = EngagementLog(**{k[4:]: a.pop(k) for k in list(a) if k.startswith("log_")})
        exposure = ExposureLog(**{k[9:]: a.pop(k) for k in list(a) if k.startswith("exposure_")})
        return cls(UserFeatureConfig(**meta["config"]), meta["vocab"], log=log, exposure=exposure, **a)
