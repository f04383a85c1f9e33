"""Offline evaluation of any Retriever on a world split: ranking metrics, oracle CTR/CVR proxies, latency.

Latency. The main pass times each `retrieve` call on a batch and divides by the batch size (amortised
cost per query, `EvaluationResult.batch_latency_ms_per_query`). The p50/p95 written to metrics.json
come from a separate batch-1 pass over the first `latency_samples` (default 100) evaluated queries, one
call per query, which is what a single online request costs; its rankings are discarded. With
`latency_samples=0` the p50/p95 fall back to the amortised per-batch numbers.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from onevision.evaluation import metrics as M
from onevision.evaluation.config import EvalConfig
from onevision.evaluation.result import EvaluationResult, metric_keys
from onevision.contracts import Ranking, Retriever
from onevision.world import World, load_world
from onevision.world.behaviour import preference_score
from onevision.world.render import decode_image


@dataclass(frozen=True)
class EvalQueries:
    query_ids: np.ndarray  # (Q,)
    user_ids: np.ndarray  # (Q,)
    targets: np.ndarray  # (Q,) photographed item
    ordered: np.ndarray  # (Q, M) items ordered in the logged slate, -1 padded
    images: pd.Series  # PNG bytes


def ordered_items(impressions: pd.DataFrame, query_ids: np.ndarray) -> np.ndarray:
    """(Q, M) ordered item ids per query in `query_ids` order, -1 padded (M >= 1)."""
    imp = impressions[impressions["ordered"].to_numpy(bool) & impressions["query_id"].isin(query_ids).to_numpy()]
    row_of = pd.Series(np.arange(len(query_ids)), index=query_ids)
    rows = row_of.loc[imp["query_id"].to_numpy()].to_numpy()
    cols = imp.groupby("query_id").cumcount().to_numpy()
    out = np.full((len(query_ids), max(1, int(cols.max()) + 1 if len(cols) else 1)), -1, dtype=np.int64)
    out[rows, cols] = imp["item_id"].to_numpy(np.int64)
    return out


def load_queries(world: World, split: str, max_queries: int | None) -> EvalQueries:
    q = world.queries_of(split)
    if q.empty:
        raise ValueError(f"split '{split}' has no queries in {world.root}; splits present: {sorted(world.queries['split'].unique())}")
    if max_queries is not None:
        q = q.iloc[:max_queries]
    qids = q["query_id"].to_numpy(np.int64)
    return EvalQueries(
        query_ids=qids,
        user_ids=q["user_id"].to_numpy(np.int64),
        targets=q["target_item_id"].to_numpy(np.int64),
        ordered=ordered_items(world.impressions, qids),
        images=q["image"].reset_index(drop=True),
    )


def _decode(images: pd.Series, start: int, stop: int) -> np.ndarray:
    return np.stack([decode_image(b) for b in images.iloc[start:stop]])


def _checked(ranking: Ranking, retriever: Retriever, b: int, k: int) -> np.ndarray:
    shape = np.shape(ranking.item_ids)
    if shape != (b, k):
        raise ValueError(f"retriever '{retriever.name}' returned item_ids of shape {shape}; expected {(b, k)} (pad short lists with -1)")
    return np.asarray(ranking.item_ids, dtype=np.int64)


def _batch1_latencies_ms(retriever: Retriever, data: EvalQueries, cfg: EvalConfig, tqdm, progress: bool) -> np.ndarray:
    n = min(cfg.latency_samples, len(data.targets))
    out = np.empty(n)
    for i in tqdm(range(n), desc=f"latency {retriever.name}", unit="q", leave=False, disable=not progress):
        image = _decode(data.images, i, i + 1)
        users = data.user_ids[i : i + 1] if cfg.personalized else None
        start = time.perf_counter()
        retriever.retrieve(image, users, cfg.retrieve_k)
        out[i] = (time.perf_counter() - start) * 1000.0
    return out


def _rank_all(retriever: Retriever, data: EvalQueries, cfg: EvalConfig, with_users: bool, tqdm,
              progress: bool) -> tuple[np.ndarray, np.ndarray]:
    """(ranked (Q, k) item ids, amortised ms per query (Q,)) over all queries, in batches."""
    n, k = len(data.targets), cfg.retrieve_k
    ranked = np.empty((n, k), dtype=np.int64)
    per_query_ms = np.empty(n)
    desc = f"eval {retriever.name}" + ("" if with_users else " (no users)")
    for start in tqdm(range(0, n, cfg.batch_size), desc=desc, unit="batch", leave=False, disable=not progress):
        stop = min(start + cfg.batch_size, n)
        images = _decode(data.images, start, stop)
        users = data.user_ids[start:stop] if with_users else None
        t0 = time.perf_counter()
        ranking = retriever.retrieve(images, users, k)
        per_query_ms[start:stop] = (time.perf_counter() - t0) * 1000.0 / (stop - start)
        ranked[start:stop] = _checked(ranking, retriever, stop - start, k)
    return ranked, per_query_ms


def _slate_preference(world: World, data: EvalQueries, top: np.ndarray, k: int) -> float:
    """Mean ground-truth preference score (the world's behaviour model) of slots 2..k."""
    behaviour = world.behaviour
    shown = np.where(top >= 0, top, behaviour.catalogue.item_ids[0])
    item_rows = behaviour.catalogue.rows(shown.ravel()).reshape(shown.shape)
    user_rows = behaviour.prefs.rows(data.user_ids)[:, None]
    pref = preference_score(behaviour.prefs, behaviour.catalogue, user_rows, item_rows)
    return M.slate_preference(pref, top, k)


def run_evaluation(retriever: Retriever, world: World, cfg: EvalConfig, progress: bool = True) -> EvaluationResult:
    from tqdm import tqdm

    began = time.perf_counter()
    data = load_queries(world, cfg.split, cfg.max_queries)
    n = len(data.targets)
    ranked, per_query_ms = _rank_all(retriever, data, cfg, cfg.personalized, tqdm, progress)
    # The same model without user ids: what personalisation adds (equal lists when it is off).
    unpersonalised = _rank_all(retriever, data, cfg, False, tqdm, progress)[0] if cfg.personalized else ranked

    samples = _batch1_latencies_ms(retriever, data, cfg, tqdm, progress)
    latency = samples if len(samples) else per_query_ms
    source = f"batch-1 sample of {len(samples)} queries" if len(samples) else f"batched (batch_size={cfg.batch_size})"

    values: dict[str, float] = {}
    for name, fn in (("recall", M.recall_at_k), ("ndcg", M.ndcg_at_k), ("mrr", M.mrr_at_k)):
        for kk in cfg.ks:
            values[f"{name}@{kk}"] = fn(ranked, data.targets, kk)
    for kk in cfg.ks:
        values[f"hitrate@{kk}"] = M.hitrate_at_k(ranked, data.ordered, kk)
    top = ranked[:, : cfg.proxy_k]
    probs = world.behaviour.probabilities(data.user_ids, data.targets, top)
    pk = cfg.proxy_k
    values[f"ctr_proxy@{pk}"] = M.ctr_proxy(probs, top, pk)
    values[f"cvr_proxy@{pk}"] = M.cvr_proxy(probs, top, pk)
    values[f"orders_proxy@{pk}"] = M.orders_proxy(probs, top, pk)
    top_without = unpersonalised[:, :pk]
    ctr_without = M.ctr_proxy(world.behaviour.probabilities(data.user_ids, data.targets, top_without), top_without, pk)
    values[f"ctr_proxy_without_users@{pk}"] = ctr_without
    values[f"personalisation_lift@{pk}"] = M.lift(values[f"ctr_proxy@{pk}"], ctr_without)
    values[f"slate_preference@{pk}"] = _slate_preference(world, data, top, pk)
    values["latency_ms_p50"] = float(np.percentile(latency, 50))
    values["latency_ms_p95"] = float(np.percentile(latency, 95))
    return EvaluationResult(
        model=retriever.name,
        n_queries=n,
        metrics={key: values[key] for key in metric_keys(cfg.ks, cfg.proxy_k)},
        split=cfg.split,
        personalized=cfg.personalized,
        batch_latency_ms_per_query=float(per_query_ms.mean()),
        latency_source=source,
        seconds=time.perf_counter() - began,
    )


def evaluate(retriever: Retriever, world: World | str | Path, config: EvalConfig = EvalConfig(),
             progress: bool = True) -> EvaluationResult:
    """Evaluate `retriever` on the world's `config.split`; `result.save(dir)` writes metrics.json."""
    if not isinstance(world, World):
        world = load_world(world)
    return run_evaluation(retriever, world, config, progress)
