"""A/B replay: simulate the days after a world's last day with the world's own simulator (photos
rendered, users sampled, optional drift), split users sticky between a control and a canary arm, let
each arm answer with a top-K slate, and let the world's ground-truth behaviour click and order.

The log is two Parquet tables (schema in docs/monitoring.md): `requests.parquet`, one row per request
with the inputs' statistics, the arm's prediction summary and the outcome, and `impressions.parquet`,
one row per shown slot; `replay.json` holds the configuration.
"""
from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from monitoring.arms import Arm, ArmError, QueryBatch
from monitoring.imagestats import EMBEDDING_COLUMNS, PcaBasis, image_stats
from monitoring.oracle import answer_slates, behaviour_on_day
from monitoring.split import DEFAULT_SALT, canary_mask
from onevision.world.config import DriftConfig, WorldConfig
from onevision.world.sessions import SECONDS_PER_DAY

REQUESTS_FILE = "requests.parquet"
IMPRESSIONS_FILE = "impressions.parquet"
META_FILE = "replay.json"
ARMS = ("control", "canary")

REQUEST_COLUMNS = (
    "request_id", "arm", "model", "window", "day", "ts", "user_id", "target_item_id", "n_results", "latency_ms",
    "img_brightness", "img_contrast", "img_saturation", "img_sharpness", "emb_pc1", "emb_pc2",
    "sid_prefix", "diversity", "target_in_slate", "expected_ctr", "expected_cvr", "expected_orders",
    "clicks", "orders", "clicked", "ordered",
)
IMPRESSION_COLUMNS = ("request_id", "arm", "position", "item_id", "clicked", "ordered")


@dataclass(frozen=True)
class ReplayConfig:
    days: tuple[int, ...]
    canary_percent: float = 10.0
    drift: DriftConfig = field(default_factory=DriftConfig)
    window_hours: int = 24
    seed: int = 0
    k: int | None = None  # slate size; default: the world's slate_size
    batch_size: int = 32
    queries_per_day: int | None = None  # default: the world's queries_per_day
    canary_start_day: int | None = None  # before this day every user gets the control (default: first day)
    salt: str = DEFAULT_SALT

    def __post_init__(self) -> None:
        if not self.days:
            raise ValueError("replay needs at least one day")
        if list(self.days) != sorted(set(self.days)) or min(self.days) < 0:
            raise ValueError(f"replay days must be distinct, increasing and >= 0, got {list(self.days)}")
        if not 0 <= self.canary_percent <= 100:
            raise ValueError(f"canary_percent must lie in [0, 100], got {self.canary_percent}")
        if self.window_hours < 1 or (24 % self.window_hours and self.window_hours % 24):
            raise ValueError(f"window_hours must divide 24 or be a multiple of 24, got {self.window_hours}")
        if self.batch_size < 1 or (self.k is not None and self.k < 1):
            raise ValueError(f"batch_size and k must be >= 1, got {self.batch_size}, {self.k}")
        if self.queries_per_day is not None and self.queries_per_day < 1:
            raise ValueError(f"queries_per_day must be >= 1, got {self.queries_per_day}")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["days"] = list(self.days)
        return d


@dataclass
class ReplayLog:
    requests: pd.DataFrame
    impressions: pd.DataFrame
    meta: dict = field(default_factory=dict)

    def arm(self, arm: str) -> pd.DataFrame:
        return self.requests[self.requests["arm"] == arm]

    def windows(self) -> list[int]:
        return sorted(int(w) for w in self.requests["window"].unique())

    def save(self, uri: str | Path) -> str:
        """Write the three files under a local directory or an s3:// prefix; returns the store URI."""
        from onevision.storage import open_store

        store = open_store(uri)
        for name, frame in ((REQUESTS_FILE, self.requests), (IMPRESSIONS_FILE, self.impressions)):
            buf = io.BytesIO()
            frame.to_parquet(buf, index=False)
            store.put_bytes(name, buf.getvalue())
        store.put_json(META_FILE, self.meta)
        return store.uri

    @classmethod
    def load(cls, uri: str | Path) -> ReplayLog:
        """Read a log written by `save` (or a serving request log with the same requests schema)."""
        from onevision.storage import open_store

        store = open_store(uri)
        if not store.exists(REQUESTS_FILE):
            raise FileNotFoundError(f"no request log at {store.uri_of(REQUESTS_FILE)}; expected {REQUESTS_FILE} "
                                    f"(and optionally {IMPRESSIONS_FILE}, {META_FILE}) under {store.uri}")
        requests = pd.read_parquet(io.BytesIO(store.get_bytes(REQUESTS_FILE)))
        missing = sorted(set(REQUEST_COLUMNS) - set(requests.columns) - {"model", "emb_pc1", "emb_pc2"})
        if missing:
            raise ValueError(f"{store.uri_of(REQUESTS_FILE)} lacks columns {missing}; schema in docs/monitoring.md")
        impressions = (pd.read_parquet(io.BytesIO(store.get_bytes(IMPRESSIONS_FILE)))
                       if store.exists(IMPRESSIONS_FILE) else pd.DataFrame(columns=list(IMPRESSION_COLUMNS)))
        meta = store.get_json(META_FILE) if store.exists(META_FILE) else {}
        return cls(requests, impressions, meta)


def _diversity(categories: np.ndarray, slates: np.ndarray) -> np.ndarray:
    cats = np.where(slates >= 0, categories, -1)
    cats = np.sort(cats, axis=1)
    distinct = (np.diff(cats, axis=1) != 0).sum(axis=1) + 1
    return distinct - (cats[:, 0] < 0)  # the -1 padding is not a category


def _embedding_basis(arm: Arm, world_dir: Path) -> PcaBasis | None:
    """PCA basis of the arm's embeddings of the catalogue's front views: fixed by the world and the
    encoder, so logs of separate replays (reference and current) share it."""
    if arm.embedder is None:
        return None
    from onevision.world import load_world
    from onevision.world.render import decode_image

    views = load_world(world_dir).item_views
    front = views[views["view"] == "front"]
    images = np.stack([decode_image(b) for b in front["image"]])
    return PcaBasis.fit(arm.embedder(images))


def _serve(arm: Arm, batch: QueryBatch, k: int, batch_size: int, basis: PcaBasis | None) -> tuple[np.ndarray, ...]:
    n = len(batch)
    items = np.full((n, k), -1, dtype=np.int64)
    prefix = np.full(n, -1, dtype=np.int64)
    latency = np.zeros(n)
    pcs = np.full((n, len(EMBEDDING_COLUMNS)), np.nan)
    for start in range(0, n, batch_size):
        sl = slice(start, min(start + batch_size, n))
        part = QueryBatch(batch.images[sl], batch.png[sl], batch.user_ids[sl])
        slates = arm.serve(part, k)
        if np.shape(slates.item_ids) != (len(part), k):
            raise ArmError(f"arm '{arm.name}' returned slates of shape {np.shape(slates.item_ids)}; expected {(len(part), k)}")
        items[sl], prefix[sl], latency[sl] = slates.item_ids, slates.sid_prefix, slates.latency_ms
        if basis is not None and arm.embedder is not None:
            pcs[sl] = basis.project(arm.embedder(part.images))
    return items, prefix, latency, pcs


def run_replay(
    world_dir: str | Path, control: Arm, canary: Arm, config: ReplayConfig,
    progress: Callable[[Iterable[int]], Iterable[int]] = lambda it: it,
) -> ReplayLog:
    from onevision.world import load_world
    from onevision.world.catalogue import make_catalogue, make_population
    from onevision.world.render import decode_image
    from onevision.world.sessions import simulate_days

    world_dir = Path(world_dir)
    world_cfg: WorldConfig | None = load_world(world_dir).config
    if world_cfg is None:
        raise ValueError(f"{world_dir} has no world.json: A/B replay needs a generated world (its simulator settings)")
    cfg = world_cfg
    if config.queries_per_day is not None:
        cfg = dataclasses.replace(cfg, queries_per_day=config.queries_per_day)
    drift = config.drift
    # New items only exist through the catalogue: build it with the replay's drift when it adds items.
    catalogue = make_catalogue(dataclasses.replace(cfg, drift=drift) if drift.new_item_share > 0 else cfg)
    population = make_population(cfg)
    k = config.k or cfg.slate_size
    arms = {"control": control, "canary": canary}
    bases = {label: _embedding_basis(arm, world_dir) for label, arm in arms.items()}
    first_day = config.days[0]
    canary_start = first_day if config.canary_start_day is None else config.canary_start_day
    window_seconds = config.window_hours * 3600

    request_parts, impression_parts = [], []
    for day in progress(list(config.days)):
        log = simulate_days(cfg, catalogue, population, [day], drift)
        images = np.stack([decode_image(b) for b in log.image])
        users = log.user_id
        is_canary = canary_mask(users, config.canary_percent, config.salt) & (day >= canary_start)
        n = len(users)
        slates = np.full((n, k), -1, dtype=np.int64)
        prefix = np.full(n, -1, dtype=np.int64)
        latency = np.zeros(n)
        pcs = np.full((n, len(EMBEDDING_COLUMNS)), np.nan)
        model = np.empty(n, dtype=object)
        for label, arm in arms.items():
            idx = np.flatnonzero(is_canary if label == "canary" else ~is_canary)
            if len(idx) == 0:
                continue
            batch = QueryBatch(images[idx], [log.image[i] for i in idx], users[idx])
            slates[idx], prefix[idx], latency[idx], pcs[idx] = _serve(arm, batch, k, config.batch_size, bases[label])
            model[idx] = arm.name
        shown = slates[slates >= 0]
        unknown = np.setdiff1d(shown, catalogue.facts.item_ids)
        if len(unknown):
            raise ArmError(f"arms returned item ids that are not in the world's catalogue: {unknown[:5].tolist()}")
        behaviour = behaviour_on_day(catalogue, population, drift, day)
        outcome = answer_slates(behaviour, users, log.target_item_id, slates, np.random.default_rng([config.seed, 11, day]))
        rows = catalogue.facts.rows(np.where(slates >= 0, slates, catalogue.facts.item_ids[0]).ravel()).reshape(slates.shape)
        stats = image_stats(images)
        arm_label = np.where(is_canary, "canary", "control")
        request_parts.append(pd.DataFrame({
            "request_id": log.query_id, "arm": arm_label, "model": model.astype(str),
            "window": ((log.ts - first_day * SECONDS_PER_DAY) // window_seconds).astype(np.int64),
            "day": log.day, "ts": log.ts, "user_id": users, "target_item_id": log.target_item_id,
            "n_results": (slates >= 0).sum(axis=1).astype(np.int64), "latency_ms": latency,
            **{name: values.astype(np.float64) for name, values in stats.items()},
            "emb_pc1": pcs[:, 0], "emb_pc2": pcs[:, 1],
            "sid_prefix": prefix, "diversity": _diversity(catalogue.facts.category[rows], slates).astype(np.int64),
            "target_in_slate": (slates == log.target_item_id[:, None]).any(axis=1).astype(np.int64),
            "expected_ctr": outcome.expected_ctr, "expected_cvr": outcome.expected_cvr,
            "expected_orders": outcome.expected_orders,
            "clicks": outcome.clicked.sum(axis=1).astype(np.int64), "orders": outcome.ordered.sum(axis=1).astype(np.int64),
            "clicked": outcome.clicked.any(axis=1).astype(np.int64), "ordered": outcome.ordered.any(axis=1).astype(np.int64),
        }))
        q, pos = np.nonzero(slates >= 0)
        impression_parts.append(pd.DataFrame({
            "request_id": log.query_id[q], "arm": arm_label[q], "position": pos.astype(np.int64),
            "item_id": slates[q, pos], "clicked": outcome.clicked[q, pos], "ordered": outcome.ordered[q, pos],
        }))
    meta = {
        "world_dir": str(world_dir), "config": config.to_dict(), "slate_size": k,
        "first_day": first_day, "canary_start_day": canary_start,
        "arms": {label: arm.name for label, arm in arms.items()},
    }
    return ReplayLog(pd.concat(request_parts, ignore_index=True), pd.concat(impression_parts, ignore_index=True), meta)


def replay_ab(
    world_dir: str | Path, control: Arm, canary: Arm, canary_percent: float, days: Sequence[int],
    drift: DriftConfig | None = None, window_hours: int = 24, seed: int = 0, **options,
) -> ReplayLog:
    """Replay `days` (e.g. world.config.days .. +N) with `canary_percent` % of users on the canary.
    `options` are the other ReplayConfig fields (k, batch_size, queries_per_day, canary_start_day, salt)."""
    config = ReplayConfig(days=tuple(int(d) for d in days), canary_percent=canary_percent,
                          drift=drift or DriftConfig(), window_hours=window_hours, seed=seed, **options)
    return run_replay(world_dir, control, canary, config)


def default_days(world_cfg: WorldConfig, n_days: int) -> tuple[int, ...]:
    """The `n_days` days right after the world's last simulated day."""
    return tuple(range(world_cfg.days, world_cfg.days + n_days))


def meta_json(log: ReplayLog) -> str:
    return json.dumps(log.meta, indent=2, sort_keys=True)
