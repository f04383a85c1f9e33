"""A/B replay: simulate the days after a world's last day with the world's own simulator (photos
rendered, users sampled, optional drift), split users sticky between a control and a canary arm, let
each arm answer with a top-K slate, and let the world's ground-truth behaviour click and order.

The log is two Parquet tables (schema in docs/monitoring.md): `requests.parquet`, one row per request
with the inputs' statistics, the arm's prediction summary and the outcome, and `impressions.parquet`,
one row per shown slot; `replay.json` holds the configuration.
"""
from __future__ import annotations

import dataclasses
import functools
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from monitoring.arms import Arm, ArmError, QueryBatch
from monitoring.imagestats import EMBEDDING_COLUMNS, PcaBasis, image_stats
from monitoring.oracle import SlateOutcome, answer_slates, behaviour_on_day
from monitoring.split import ARMS, DEFAULT_SALT, canary_mask
from onevision.world.config import DriftConfig, WorldConfig
from onevision.world.sessions import SECONDS_PER_DAY, SessionLog, drift_on

REQUESTS_FILE = "requests.parquet"
IMPRESSIONS_FILE = "impressions.parquet"
META_FILE = "replay.json"

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


@dataclass
class _Served:
    slates: np.ndarray  # (Q, k)
    sid_prefix: np.ndarray
    latency_ms: np.ndarray
    pcs: np.ndarray  # (Q, 2), NaN for arms without an embedder
    model: np.ndarray  # arm name per request

    @classmethod
    def empty(cls, n: int, k: int) -> _Served:
        return cls(np.full((n, k), -1, dtype=np.int64), np.full(n, -1, dtype=np.int64), np.zeros(n),
                   np.full((n, len(EMBEDDING_COLUMNS)), np.nan), np.full(n, "", dtype=object))


def _serve(arm: Arm, batch: QueryBatch, k: int, batch_size: int, basis: PcaBasis | None) -> _Served:
    served = _Served.empty(len(batch), k)
    for start in range(0, len(batch), batch_size):
        sl = slice(start, min(start + batch_size, len(batch)))
        part = QueryBatch(batch.images[sl], batch.png[sl], batch.user_ids[sl],
                          None if batch.query_ids is None else batch.query_ids[sl], None if batch.ts is None else batch.ts[sl])
        slates = arm.serve(part, k)
        if np.shape(slates.item_ids) != (len(part), k):
            raise ArmError(f"arm '{arm.name}' returned slates of shape {np.shape(slates.item_ids)}; expected {(len(part), k)}")
        served.slates[sl], served.sid_prefix[sl], served.latency_ms[sl] = slates.item_ids, slates.sid_prefix, slates.latency_ms
        if basis is not None and arm.embedder is not None:
            served.pcs[sl] = basis.project(arm.embedder(part.images))
    served.model[:] = arm.name
    return served


def _serve_day(arms: dict[str, Arm], bases: dict[str, PcaBasis | None], log: SessionLog, images: np.ndarray,
               is_canary: np.ndarray, k: int, batch_size: int) -> _Served:
    served = _Served.empty(len(log), k)
    for label, arm in arms.items():
        idx = np.flatnonzero(is_canary if label == "canary" else ~is_canary)
        if len(idx):
            queries = QueryBatch(images[idx], [log.image[i] for i in idx], log.user_id[idx], log.query_id[idx], log.ts[idx])
            part = _serve(arm, queries, k, batch_size, bases[label])
            for name in ("slates", "sid_prefix", "latency_ms", "pcs", "model"):
                getattr(served, name)[idx] = getattr(part, name)
    return served


def _day_tables(log: SessionLog, images: np.ndarray, is_canary: np.ndarray, served: _Served, outcome: SlateOutcome,
                categories: np.ndarray, window: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """requests and impressions rows of one day; `categories` is the category of every slate slot."""
    slates = served.slates
    arm_label = np.where(is_canary, "canary", "control")
    requests = pd.DataFrame({
        "request_id": log.query_id, "arm": arm_label, "model": served.model.astype(str), "window": window,
        "day": log.day, "ts": log.ts, "user_id": log.user_id, "target_item_id": log.target_item_id,
        "n_results": (slates >= 0).sum(axis=1).astype(np.int64), "latency_ms": served.latency_ms,
        **{name: values.astype(np.float64) for name, values in image_stats(images).items()},
        "emb_pc1": served.pcs[:, 0], "emb_pc2": served.pcs[:, 1],
        "sid_prefix": served.sid_prefix, "diversity": _diversity(categories, slates).astype(np.int64),
        "target_in_slate": (slates == log.target_item_id[:, None]).any(axis=1).astype(np.int64),
        "expected_ctr": outcome.expected_ctr, "expected_cvr": outcome.expected_cvr,
        "expected_orders": outcome.expected_orders,
        "clicks": outcome.clicked.sum(axis=1).astype(np.int64), "orders": outcome.ordered.sum(axis=1).astype(np.int64),
        "clicked": outcome.clicked.any(axis=1).astype(np.int64), "ordered": outcome.ordered.any(axis=1).astype(np.int64),
    })
    q, pos = np.nonzero(slates >= 0)
    impressions = pd.DataFrame({
        "request_id": log.query_id[q], "arm": arm_label[q], "position": pos.astype(np.int64),
        "item_id": slates[q, pos], "clicked": outcome.clicked[q, pos], "ordered": outcome.ordered[q, pos],
    })
    return requests, impressions


@functools.lru_cache(maxsize=16)
def _simulated_day(cfg: WorldConfig, catalogue_cfg: WorldConfig, day: int, drift: DriftConfig) -> tuple[SessionLog, np.ndarray]:
    """One simulated day and its decoded photos. A day depends only on (world, catalogue, day, the drift in
    effect that day), so replays of several arms or drift scenarios over the same days simulate it once."""
    from onevision.world.catalogue import make_catalogue, make_population
    from onevision.world.render import decode_image
    from onevision.world.sessions import simulate_days

    log = simulate_days(cfg, make_catalogue(catalogue_cfg), make_population(cfg), [day], drift)
    images = np.stack([decode_image(b) for b in log.image])
    images.setflags(write=False)
    return log, images


def feedback_events(query_ids: np.ndarray, ts: np.ndarray, slates: np.ndarray, outcome: SlateOutcome) -> list[dict]:
    """The click and order events of one day's outcome, as a shop's front end would send them to the event sink."""
    events = []
    for kind, hits in (("click", outcome.clicked), ("order", outcome.ordered)):
        for q, pos in zip(*np.nonzero(hits)):
            qid, item = int(query_ids[q]), int(slates[q, pos])
            events.append({"event_id": f"{qid}:{kind}:{item}", "request_id": str(qid), "item_id": item, "kind": kind,
                           "ts": float(ts[q])})
    return events


def run_replay(
    world_dir: str | Path, control: Arm, canary: Arm, config: ReplayConfig,
    progress: Callable[[Iterable[int]], Iterable[int]] = lambda it: it,
    on_feedback: Callable[[list[dict]], object] | None = None,
) -> ReplayLog:
    """`on_feedback` receives each day's click / order events (`feedback_events`), e.g. to post them to the sink."""
    from onevision.world import load_world
    from onevision.world.catalogue import make_catalogue, make_population

    world_dir = Path(world_dir)
    world_cfg: WorldConfig | None = load_world(world_dir).config
    if world_cfg is None:
        raise ValueError(f"{world_dir} has no world.json: A/B replay needs a generated world (its simulator settings)")
    cfg = world_cfg
    if config.queries_per_day is not None:
        cfg = dataclasses.replace(cfg, queries_per_day=config.queries_per_day)
    drift = config.drift
    # New items only exist through the catalogue: build it with the replay's drift when it adds items.
    catalogue_cfg = dataclasses.replace(cfg, drift=drift) if drift.new_item_share > 0 else cfg
    catalogue = make_catalogue(catalogue_cfg)
    population = make_population(cfg)
    k = config.k or cfg.slate_size
    arms = {"control": control, "canary": canary}
    basis_of: dict[int, PcaBasis | None] = {}  # one fit per distinct embedder
    for arm in arms.values():
        if id(arm.embedder) not in basis_of:
            basis_of[id(arm.embedder)] = _embedding_basis(arm, world_dir)
    bases = {label: basis_of[id(arm.embedder)] for label, arm in arms.items()}
    first_day = config.days[0]
    canary_start = first_day if config.canary_start_day is None else config.canary_start_day
    window_seconds = config.window_hours * 3600

    facts = catalogue.facts
    request_parts, impression_parts = [], []
    for day in progress(list(config.days)):
        log, images = _simulated_day(cfg, catalogue_cfg, day, drift if drift_on(drift, day) else DriftConfig())
        is_canary = canary_mask(log.user_id, config.canary_percent, config.salt) & (day >= canary_start)
        served = _serve_day(arms, bases, log, images, is_canary, k, config.batch_size)
        unknown = np.setdiff1d(served.slates[served.slates >= 0], facts.item_ids)
        if len(unknown):
            raise ArmError(f"arms returned item ids that are not in the world's catalogue: {unknown[:5].tolist()}")
        outcome = answer_slates(behaviour_on_day(catalogue, population, drift, day), log.user_id, log.target_item_id,
                                served.slates, np.random.default_rng([config.seed, 11, day]))
        if on_feedback is not None:
            on_feedback(feedback_events(log.query_id, log.ts, served.slates, outcome))
        shown = np.where(served.slates >= 0, served.slates, facts.item_ids[0])
        categories = facts.category[facts.rows(shown.ravel()).reshape(shown.shape)]
        window = ((log.ts - first_day * SECONDS_PER_DAY) // window_seconds).astype(np.int64)
        requests, impressions = _day_tables(log, images, is_canary, served, outcome, categories, window)
        request_parts.append(requests)
        impression_parts.append(impressions)
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

