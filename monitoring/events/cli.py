"""`onevision events serve`: the event sink as an HTTP server (uvicorn)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from onevision.cli_support import fail

events_app = typer.Typer(help="Event sink: KServe payload logs and click/order feedback -> partitioned Parquet.",
                         no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})


@events_app.callback()
def _group() -> None:
    """Keeps `serve` a subcommand when the app runs alone (`python -m monitoring.events serve`)."""


@events_app.command("serve")
def serve(
    store: Annotated[str, typer.Option(help="Artifact store the Parquet goes to: a local dir or s3://bucket/prefix.")],
    host: Annotated[str, typer.Option(help="Address to bind.")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    prefix: Annotated[str, typer.Option(help="Key prefix under the store.")] = "events",
    flush_rows: Annotated[int, typer.Option(help="Flush once this many rows are buffered.")] = 1000,
    flush_seconds: Annotated[float, typer.Option(help="Flush at least this often (seconds).")] = 5.0,
    max_body_bytes: Annotated[int, typer.Option(help="Largest accepted request body.")] = 16 * 2**20,
    max_buffered_rows: Annotated[int, typer.Option(help="Answer 503 (retry) above this many unflushed rows.")] = 200_000,
    dedupe_capacity: Annotated[int, typer.Option(help="Event ids remembered for de-duplication.")] = 1_000_000,
    arm_extension: Annotated[str, typer.Option(help="CloudEvent extension that tells the canary apart.")] = "endpoint",
    canary_value: Annotated[list[str], typer.Option(help="A value of --arm-extension meaning canary (repeatable).")] = ["canary"],  # noqa: B006
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
) -> None:
    """Serve POST / (CloudEvents), POST /feedback, GET /metrics and /healthz; flush to Parquet, and on SIGTERM."""
    import uvicorn

    from monitoring.events.app import create_app
    from monitoring.events.arms import ArmMapping
    from monitoring.events.sink import EventSink, SinkConfig

    try:
        config = SinkConfig(store=store, prefix=prefix.strip("/"), flush_rows=flush_rows, flush_seconds=flush_seconds,
                            max_body_bytes=max_body_bytes, max_buffered_rows=max_buffered_rows,
                            dedupe_capacity=dedupe_capacity,
                            arms=ArmMapping(extension=arm_extension, canary_values=tuple(canary_value)))
        sink = EventSink(config)
    except ValueError as exc:
        fail(str(exc), 2)
    typer.echo(f"event sink on http://{host}:{port} -> {sink.store.uri_of(config.prefix)}", err=True)
    uvicorn.run(create_app(sink), host=host, port=port, log_level=log_level, access_log=False)


@events_app.command("join")
def join(
    events: Annotated[str, typer.Option("--events", help="The sink's store (its --store): a local dir or s3://bucket/prefix.")],
    out: Annotated[str, typer.Option("--out", help="Where to write the request log (requests.parquet, impressions.parquet).")],
    window_hours: Annotated[int, typer.Option(help="Length of a time window of the log.")] = 24,
    world: Annotated[Optional[Path], typer.Option(help="World (or catalogue) directory whose item categories give the slates' diversity.")] = None,
    prefix: Annotated[str, typer.Option(help="Key prefix under the store (the sink's --prefix).")] = "events",
) -> None:
    """Join logged requests, responses and feedback into a GX-checked request log for `drift report` / `ab compare`."""
    import tempfile

    from monitoring.events.join import EventJoinError, join_events
    from monitoring.events.validate import validate_request_log
    from onevision.validation import DataValidationError

    categories = None
    if world is not None:
        from onevision.world import load_world

        items = load_world(world).items
        categories = dict(zip(items["item_id"].tolist(), items["category"].tolist()))
    try:
        log = join_events(events, window_hours=window_hours, categories=categories, prefix=prefix.strip("/"))
    except EventJoinError as exc:
        fail(str(exc))
    with tempfile.TemporaryDirectory(prefix="onevision-join-") as tmp:
        try:
            report = validate_request_log(log, Path(tmp))
        except DataValidationError as exc:
            fail(str(exc))
    uri = log.save(out)
    per_arm = log.requests.groupby("arm")[["clicked", "ordered"]].agg(["mean", "size"])
    typer.echo(f"joined {len(log.requests)} requests ({report.tables['impressions'].rows} impressions) -> {uri}")
    for arm, row in per_arm.iterrows():
        typer.echo(f"  {arm:8s} {int(row[('clicked', 'size')]):6d} requests  CTR {row[('clicked', 'mean')]:.4f}  "
                   f"CVR {row[('ordered', 'mean')]:.4f}")
