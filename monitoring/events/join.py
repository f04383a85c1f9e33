"""The event sink's Parquet (KServe logger request / response CloudEvents and click / order feedback) joined into
the request log that `drift report` and `ab compare` read: one `requests` row per served query (its inputs'
statistics, the arm's slate summary and the outcome) and one `impressions` row per shown slot.

What production cannot know is left empty: the photographed item (`target_item_id` -1), the oracle's expected
rates and the embedding PCs (NaN); the drift tests on them are skipped with that reason. `diversity` needs the
item categories (`categories`, e.g. the catalogue's); without them it is NaN too.
"""
from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from monitoring.events.schema import DEFAULT_PREFIX, FEEDBACK, REQUESTS, RESPONSES
from monitoring.imagestats import image_stats
from monitoring.replay import IMPRESSION_COLUMNS, REQUEST_COLUMNS, ReplayLog
from monitoring.split import ARMS
from onevision.service.client import v2_predictions
from onevision.service.envelopes import v1_instances, v2_inputs, v2_instances

INSTANCE_SEPARATOR = "/"  # a multi-instance request's row i is "<request id>/<i>"; feedback may name either


class EventJoinError(ValueError):
    """The sink's events cannot be joined (no events, an undecodable body ...); the message says which."""


def read_events(root: Path, table: str, prefix: str = DEFAULT_PREFIX) -> pd.DataFrame:
    """Every Parquet part of one sink table under `root/<prefix>/<table>/`, deduplicated by `event_id` (the sink
    deduplicates within one process; a redelivery after its restart is dropped here). Hidden or temporary files
    (a write in progress) are not read."""
    import pyarrow.parquet as pq

    parts = sorted(p for p in (Path(root) / prefix / table).rglob("*.parquet")
                   if not any(seg.startswith((".", "_")) for seg in p.relative_to(root).parts))
    if not parts:
        return pd.DataFrame()
    frame = pd.concat([pq.read_table(p, partitioning=None).to_pandas() for p in parts], ignore_index=True)
    return frame.drop_duplicates("event_id", keep="first").reset_index(drop=True)


def _request_rows(body: Mapping) -> list[dict]:
    if "inputs" in body:
        return v2_instances(v2_inputs(body))
    return [row if isinstance(row, dict) else {} for row in v1_instances(body)]


def _response_rows(body: Mapping) -> list[dict]:
    if "outputs" in body:
        return v2_predictions(body)
    predictions = body.get("predictions")
    if not isinstance(predictions, list):
        raise EventJoinError(f"response body has neither 'outputs' (v2) nor 'predictions' (v1): keys {sorted(body)}")
    return predictions


def _decode(image_b64: str) -> np.ndarray:
    from onevision.world.render import decode_image

    return decode_image(base64.b64decode(image_b64))


def join_events(events_uri: str | Path, window_hours: int = 24, categories: Mapping[int, int] | None = None,
                prefix: str = DEFAULT_PREFIX) -> ReplayLog:
    """The request log of every logged request that has its response; clicks and orders from the feedback. The
    model version is the response's (the sink files request events under `model_version=unknown`: a request
    does not say which model will answer it)."""
    from onevision.storage import ArtifactNotFoundError, open_store

    try:
        root = open_store(str(events_uri)).local_path()  # an s3:// store is downloaded first
    except ArtifactNotFoundError as exc:
        raise EventJoinError(f"no logged requests and responses under {events_uri}/{prefix}/ to join: {exc}") from exc
    requests, responses = read_events(root, REQUESTS, prefix), read_events(root, RESPONSES, prefix)
    feedback = read_events(root, FEEDBACK, prefix)
    if requests.empty or responses.empty:
        raise EventJoinError(f"no logged requests and responses under {events_uri}/{prefix}/ to join")
    answered = requests.drop(columns=["model_version"]).merge(
        responses[["request_id", "body", "event_time", "model_version"]], on="request_id", suffixes=("_request", "_response"))
    rows, slots = [], []
    for event in answered.itertuples(index=False):
        try:
            inputs = _request_rows(json.loads(event.body_request))
            outputs = _response_rows(json.loads(event.body_response))
        except (ValueError, TypeError) as exc:
            raise EventJoinError(f"request {event.request_id}: its logged payload cannot be read: {exc}") from exc
        if len(inputs) != len(outputs):
            raise EventJoinError(f"request {event.request_id}: {len(inputs)} instances but {len(outputs)} predictions")
        latency = (event.event_time_response - event.event_time_request).total_seconds() * 1000
        for i, (instance, prediction) in enumerate(zip(inputs, outputs)):
            rid = event.request_id if len(inputs) == 1 else f"{event.request_id}{INSTANCE_SEPARATOR}{i}"
            items = prediction.get("items") or []
            rows.append({"request_id": rid, "arm": event.arm, "model": event.model_version,
                         "ts": event.event_time_request, "user_id": int(instance.get("user_id", -1)),
                         "latency_ms": latency / len(inputs), "image_b64": instance.get("image_b64"),
                         "sid_prefix": int(items[0]["sid"][0]) if items and items[0].get("sid") else -1,
                         "n_results": len(items)})
            slots += [{"request_id": rid, "arm": event.arm, "position": p, "item_id": int(item["item_id"])}
                      for p, item in enumerate(items)]
    table = pd.DataFrame(rows).sort_values(["ts", "request_id"], kind="stable").reset_index(drop=True)
    shown = pd.DataFrame(slots, columns=["request_id", "arm", "position", "item_id"])
    shown = _with_feedback(shown, feedback)
    return ReplayLog(_requests_table(table, shown, window_hours, categories), shown[list(IMPRESSION_COLUMNS)],
                     {"source": "event sink", "events": str(events_uri), "config": {"window_hours": window_hours}})


def _with_feedback(shown: pd.DataFrame, feedback: pd.DataFrame) -> pd.DataFrame:
    shown = shown.assign(clicked=0, ordered=0)
    if feedback.empty:
        return shown
    for kind, column in (("click", "clicked"), ("order", "ordered")):
        hits = feedback.loc[feedback["kind"] == kind, ["request_id", "item_id"]].drop_duplicates()
        hit = shown.merge(hits.assign(_hit=1), on=["request_id", "item_id"], how="left")["_hit"].fillna(0)
        shown[column] = hit.astype(np.int64).to_numpy()
    return shown


def _requests_table(table: pd.DataFrame, shown: pd.DataFrame, window_hours: int,
                    categories: Mapping[int, int] | None) -> pd.DataFrame:
    ts = pd.to_datetime(table["ts"], utc=True)
    start = ts.min().floor("D")
    seconds = (ts - start).dt.total_seconds()
    stats = image_stats(np.stack([_decode(b) for b in table["image_b64"]]))
    per_request = shown.groupby("request_id")[["clicked", "ordered"]].sum()
    clicks = per_request["clicked"].reindex(table["request_id"]).fillna(0).astype(np.int64).to_numpy()
    orders = per_request["ordered"].reindex(table["request_id"]).fillna(0).astype(np.int64).to_numpy()
    out = pd.DataFrame({
        "request_id": table["request_id"], "arm": table["arm"], "model": table["model"].astype(str),
        "window": (seconds // (window_hours * 3600)).astype(np.int64),
        "day": (seconds // 86400).astype(np.int64), "ts": seconds.astype(np.int64),
        "user_id": table["user_id"].astype(np.int64), "target_item_id": np.int64(-1),
        "n_results": table["n_results"].astype(np.int64), "latency_ms": table["latency_ms"].astype(np.float64),
        **{name: values.astype(np.float64) for name, values in stats.items()},
        "emb_pc1": np.nan, "emb_pc2": np.nan, "sid_prefix": table["sid_prefix"].astype(np.int64),
        "diversity": _diversity(table["request_id"], shown, categories),
        "target_in_slate": np.int64(-1), "expected_ctr": np.nan, "expected_cvr": np.nan, "expected_orders": np.nan,
        "clicks": clicks, "orders": orders, "clicked": (clicks > 0).astype(np.int64),
        "ordered": (orders > 0).astype(np.int64),
    })
    unknown = sorted(set(out["arm"]) - set(ARMS))
    if unknown:
        raise EventJoinError(f"events name arms {unknown}; expected {list(ARMS)}")
    return out[list(REQUEST_COLUMNS)]


def _diversity(request_ids: pd.Series, shown: pd.DataFrame, categories: Mapping[int, int] | None) -> np.ndarray:
    if categories is None:
        return np.full(len(request_ids), np.nan)
    cats = shown.assign(category=shown["item_id"].map(categories)).groupby("request_id")["category"].nunique()
    return cats.reindex(request_ids).fillna(0).to_numpy(np.float64)
