"""Query sessions: a user photographs a product, a logged cascade-like policy shows a slate, and the
ground-truth behaviour model samples clicks and orders. Each day has its own random stream, so any
range of days (the monitoring period included) can be simulated again, alone, with the same result.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from onevision.world.behaviour import ClickOrderModel, preference_score, visual_match
from onevision.world.catalogue import Catalogue, Population, shifted_preferences
from onevision.world.config import DriftConfig, WorldConfig
from onevision.world.render import encode_png, render_user_photo

SECONDS_PER_DAY = 86_400


@dataclass
class SessionLog:
    """Columns of the queries and impressions tables for a range of days."""

    query_id: np.ndarray
    user_id: np.ndarray
    day: np.ndarray
    ts: np.ndarray
    target_item_id: np.ndarray
    image: list[bytes]
    slate: np.ndarray  # (Q, S) item ids shown
    clicked: np.ndarray  # (Q, S) bool
    ordered: np.ndarray  # (Q, S) bool

    def __len__(self) -> int:
        return len(self.query_id)


def drift_on(drift: DriftConfig, day: int) -> bool:
    return drift.start_day is not None and day >= drift.start_day


def simulate_day(
    cfg: WorldConfig,
    catalogue: Catalogue,
    population: Population,
    day: int,
    first_query_id: int,
    drift: DriftConfig | None = None,
) -> SessionLog:
    drift = cfg.drift if drift is None else drift
    rng = np.random.default_rng([cfg.seed, 3, day])
    facts = catalogue.facts
    prefs = population.prefs
    discrepancy = cfg.discrepancy
    if drift_on(drift, day):
        prefs = shifted_preferences(prefs, drift.preference_shift)
        discrepancy = discrepancy + drift.camera_degradation
    available = np.flatnonzero(catalogue.first_day <= day)
    active_users = np.flatnonzero(population.signup_day <= day)
    n = cfg.queries_per_day
    weights = population.activity[active_users] / population.activity[active_users].sum()
    user_rows = rng.choice(active_users, size=n, p=weights)

    # Which product each user photographs: category by taste, then item by popularity × affinity.
    categories = np.array([rng.choice(cfg.categories, p=prefs.category_pref[u]) for u in user_rows])
    target_rows = np.empty(n, dtype=np.int64)
    for q in range(n):
        pool = available[facts.category[available] == categories[q]]
        if len(pool) == 0:
            pool = available
        w = catalogue.popularity[pool] * np.exp(preference_score(prefs, facts, np.full(len(pool), user_rows[q]), pool))
        target_rows[q] = rng.choice(pool, p=w / w.sum())

    # Logged policy: a cascade that sees the photo imperfectly and personalises a little.
    match = visual_match(facts, target_rows[:, None], available[None, :])
    pref = preference_score(prefs, facts, user_rows[:, None], available[None, :])
    noise = rng.normal(0.0, 0.2 + 0.35 * discrepancy, match.shape)
    score = match + 0.08 * pref + noise
    s = min(cfg.slate_size, len(available))
    top = np.argpartition(-score, s - 1, axis=1)[:, :s]
    top = np.take_along_axis(top, np.argsort(-np.take_along_axis(score, top, 1), axis=1), 1)
    slate = facts.item_ids[available[top]]

    behaviour = ClickOrderModel(facts, prefs)
    probs = behaviour.probabilities(prefs.user_ids[user_rows], facts.item_ids[target_rows], slate)
    clicked = rng.random(probs.click.shape) < probs.click
    # Ordering requires a click: P(order | click) = P(order) / P(click).
    p_buy = np.divide(probs.order, probs.click, out=np.zeros_like(probs.order), where=probs.click > 0)
    ordered = clicked & (rng.random(probs.click.shape) < p_buy)

    images = [
        encode_png(render_user_photo(catalogue.look(int(r)), rng, discrepancy, cfg.image_size)) for r in target_rows
    ]
    ts = day * SECONDS_PER_DAY + np.sort(rng.integers(0, SECONDS_PER_DAY, n))
    return SessionLog(
        query_id=np.arange(first_query_id, first_query_id + n, dtype=np.int64),
        user_id=prefs.user_ids[user_rows],
        day=np.full(n, day, dtype=np.int64),
        ts=ts.astype(np.int64),
        target_item_id=facts.item_ids[target_rows],
        image=images,
        slate=slate,
        clicked=clicked,
        ordered=ordered,
    )


def simulate_days(
    cfg: WorldConfig,
    catalogue: Catalogue,
    population: Population,
    days: Iterable[int],
    drift: DriftConfig | None = None,
    progress: Callable[[Iterable[int]], Iterable[int]] = lambda it: it,
) -> SessionLog:
    """Simulate the given days. Query ids are day × queries_per_day + index, stable across calls."""
    logs = [
        simulate_day(cfg, catalogue, population, d, d * cfg.queries_per_day, drift) for d in progress(list(days))
    ]
    return SessionLog(
        query_id=np.concatenate([l.query_id for l in logs]),
        user_id=np.concatenate([l.user_id for l in logs]),
        day=np.concatenate([l.day for l in logs]),
        ts=np.concatenate([l.ts for l in logs]),
        target_item_id=np.concatenate([l.target_item_id for l in logs]),
        image=[img for l in logs for img in l.image],
        slate=np.concatenate([l.slate for l in logs]),
        clicked=np.concatenate([l.clicked for l in logs]),
        ordered=np.concatenate([l.ordered for l in logs]),
    )
