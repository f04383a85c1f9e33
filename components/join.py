"""Component: the event sink's Parquet (KServe payload logs and click/order feedback) joined into a request log
and checked by the GX gate, for the drift report."""
from typing import NamedTuple

from kfp.dsl import Dataset, Metrics, Output

from components.decorator import onevision_component


@onevision_component
def join_events(
    events_uri: str,
    log: Output[Dataset],
    metrics: Output[Metrics],
    window_hours: int = 24,
    s3_endpoint: str = "",
) -> NamedTuple("Outputs", log_uri=str):
    """Joins the sink's request, response and feedback events into requests.parquet + impressions.parquet.

    Args:
        events_uri: The event sink's store (local path or s3:// URI; `events/` below it).
        log: The joined request log (the drift report's input), with the gate's result in validation/.
        metrics: Requests and impressions per arm, click and order counts.
        window_hours: Length of a time window of the log.
        s3_endpoint: S3-compatible endpoint (MinIO); keys come from the S3 secret.

    Returns:
        log_uri: Where the joined log is (the drift report reads it from there).
    """
    from collections import namedtuple
    from pathlib import Path

    from components.runtime import log_scalars, output_dir, use_s3_endpoint
    from monitoring.events.join import join_events as join
    from monitoring.events.validate import validate_request_log

    use_s3_endpoint(s3_endpoint)
    out = output_dir(log)
    joined = join(events_uri, window_hours=window_hours)
    validate_request_log(joined, Path(out) / "validation")  # raises DataValidationError naming each failure
    joined.save(str(out))
    counts = {f"{arm}.requests": int((joined.requests["arm"] == arm).sum()) for arm in ("control", "canary")}
    counts.update(clicks=int(joined.requests["clicks"].sum()), orders=int(joined.requests["orders"].sum()))
    log.metadata.update(log_scalars(metrics, counts))
    return namedtuple("Outputs", ["log_uri"])(log.uri)
