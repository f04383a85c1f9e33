"""`onevision ab ...` (replay, compare) and `onevision drift ...` (report, review).

Registered in onevision/cli.py with
    from monitoring.cli import ab_app, drift_app
    app.add_typer(ab_app, name="ab")
    app.add_typer(drift_app, name="drift")
Evidently, torch and the world simulator are imported inside the commands, so `--help` stays fast.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from onevision.cli_support import fail

ab_app = typer.Typer(help="A/B replay of a canary against a control on the synthetic world, and arm comparison.",
                     no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})
drift_app = typer.Typer(help="Drift reports (Evidently) per arm, alerts and their review.",
                        no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})

RulesOpt = Annotated[Optional[Path], typer.Option("--rules", help="Monitoring rules YAML (default: monitoring/rules.yaml).")]




@ab_app.command("replay")
def ab_replay(
    world_dir: Annotated[Path, typer.Argument(help="Generated world directory (world.json + tables).")],
    control: Annotated[str, typer.Option(help="Control arm: bundle dir/URI, http(s)://... (v1; v2 when the path has /v2/, or prefix v1+/v2+), random[:SEED] or popularity.")],
    canary: Annotated[str, typer.Option(help="Canary arm, same forms as --control.")],
    out: Annotated[str, typer.Option(help="Where to write requests.parquet, impressions.parquet, replay.json, ctr_cvr.svg (dir or s3://).")],
    canary_percent: Annotated[float, typer.Option(help="Share of users (sticky by user id) sent to the canary.")] = 10.0,
    days: Annotated[int, typer.Option(help="Number of days to replay.")] = 2,
    first_day: Annotated[Optional[int], typer.Option(help="First replayed day (default: the day after the world's last).")] = None,
    drift_start_day: Annotated[Optional[int], typer.Option(help="First drifted day (default: the second replayed day).")] = None,
    preference_shift: Annotated[float, typer.Option(help="Drift: share of brand/price preference moved (0..1).")] = 0.0,
    camera_degradation: Annotated[float, typer.Option(help="Drift: extra photo discrepancy.")] = 0.0,
    new_item_share: Annotated[float, typer.Option(help="Drift: share of items launched on the drift day.")] = 0.0,
    window_hours: Annotated[int, typer.Option(help="Length of a time window in hours.")] = 24,
    seed: Annotated[int, typer.Option(help="Seed of the click/order sampling (and random arms).")] = 0,
    k: Annotated[Optional[int], typer.Option(help="Slate size (default: the world's slate size).")] = None,
    batch_size: Annotated[int, typer.Option(help="Requests per arm call.")] = 32,
    queries_per_day: Annotated[Optional[int], typer.Option(help="Queries per replayed day (default: the world's).")] = None,
    canary_start_day: Annotated[Optional[int], typer.Option(help="Day the canary split starts (default: first replayed day).")] = None,
    pre_period_days: Annotated[int, typer.Option(help="The first N replayed days are control-only: the pre-period of CUPED (and the SRM's new / returning segments).")] = 0,
    sink: Annotated[Optional[str], typer.Option(help="Event sink URL (`onevision events serve`): HTTP arms log each request and response there as KServe's payload logger does, and the clicks / orders are posted as feedback.")] = None,
) -> None:
    """Replay later days of the world through a control and a canary arm; log impressions, clicks, orders."""
    import time

    from tqdm import tqdm

    from monitoring.arms import ArmError, arm_from_spec
    from monitoring.charts import rate_chart_svg
    from monitoring.replay import ReplayConfig, run_replay
    from onevision.storage import open_store
    from onevision.world import DriftConfig, load_world

    world_cfg = load_world(world_dir).config
    if world_cfg is None:
        fail(f"{world_dir} has no world.json; generate a world with `onevision world generate`")
    start = world_cfg.days if first_day is None else first_day
    if pre_period_days:
        if canary_start_day is not None:
            fail("give --canary-start-day or --pre-period-days, not both", 2)
        if not 0 < pre_period_days < days:
            fail(f"--pre-period-days must lie in 1..{days - 1} (it leaves at least one canary day of --days {days})", 2)
        canary_start_day = start + pre_period_days
    drifting = preference_shift > 0 or camera_degradation > 0 or new_item_share > 0
    drift = DriftConfig(drift_start_day if drift_start_day is not None else (start + 1 if drifting else None),
                        preference_shift, camera_degradation, new_item_share)
    try:
        config = ReplayConfig(days=tuple(range(start, start + days)), canary_percent=canary_percent, drift=drift,
                              window_hours=window_hours, seed=seed, k=k, batch_size=batch_size,
                              queries_per_day=queries_per_day, canary_start_day=canary_start_day)
        began = time.perf_counter()
        arms = {"control": arm_from_spec(control, world_dir, seed), "canary": arm_from_spec(canary, world_dir, seed + 1)}
        on_feedback = None
        if sink is not None:
            from monitoring.arms import HttpArm
            from monitoring.events.emit import PayloadLogger, post_feedback

            if not all(isinstance(arm, HttpArm) for arm in arms.values()):
                fail("--sink needs both arms served over HTTP (http://...): the sink receives what servers log", 2)
            for label, arm in arms.items():
                arm.payload_logger = PayloadLogger(sink, label)
            on_feedback = lambda events: post_feedback(sink, events)  # noqa: E731
        log = run_replay(world_dir, arms["control"], arms["canary"], config,
                         progress=lambda it: tqdm(it, desc="replay", unit="day", leave=False), on_feedback=on_feedback)
    except (ValueError, FileNotFoundError, ArmError, RuntimeError) as exc:  # RuntimeError: EventPostError
        fail(str(exc))
    uri = log.save(out)
    split = (log.meta["canary_start_day"] - start) * 24 // window_hours
    open_store(out).put_text("ctr_cvr.svg", rate_chart_svg(log.requests, split_window=split, canary_percent=canary_percent))
    rates = log.requests.groupby("arm")[["clicked", "ordered"]].agg(["mean", "size"])
    typer.echo(f"replayed {len(log.requests)} requests over days {list(config.days)} in {time.perf_counter() - began:.1f}s -> {uri}")
    for arm, row in rates.iterrows():
        typer.echo(f"  {arm:8s} {int(row[('clicked', 'size')]):6d} requests  CTR {row[('clicked', 'mean')]:.4f}  "
                   f"CVR {row[('ordered', 'mean')]:.4f}")


ExpectedSplitOpt = Annotated[Optional[float], typer.Option(
    "--expected-canary-percent",
    help="The split configured for the canary (% of users), for the sample-ratio check (default: the log's replay config).")]


def comparison_lines(comparison) -> list[str]:
    """The sample-ratio verdict, the looks and each metric's CUPED estimate, as `ab compare` and `drift review` print them."""
    srm = comparison.srm
    lines = [f"sample ratio: {'MISMATCH' if srm.mismatch else 'ok' if srm.checked else 'not checked'} — {srm.reason}"]
    lines.append(f"looks: windows {comparison.windows} (cumulative; pre-period {comparison.pre_period_windows}), "
                 f"{comparison.method} test at alpha={comparison.alpha:g}")
    for m in comparison.metrics.values():
        cuped = (f"CUPED: {m.cuped.variance_reduction:.0%} less variance (beta={m.cuped.beta:.3g}, "
                 f"{m.cuped.covered_users:.0%} of users with a pre-period)" if m.cuped.applied and m.cuped.variance_reduction is not None
                 else f"CUPED not applied: {m.cuped.reason}")
        lines.append(f"  {m.metric}: {cuped}")
    return lines


@ab_app.command("compare")
def ab_compare(
    log: Annotated[str, typer.Argument(help="Replay / request log directory or s3:// URI.")],
    window: Annotated[Optional[list[int]], typer.Option("--window", help="Looks to read (repeat; default: every window since the canary started).")] = None,
    rules: RulesOpt = None,
    expected_canary_percent: ExpectedSplitOpt = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the comparison and recommendation as JSON.")] = None,
) -> None:
    """CTR/CVR lift of the canary over the control (sequential or fixed test, CUPED, sample-ratio check) and the recommendation."""
    import json

    from rich.console import Console
    from rich.table import Table

    from monitoring.compare import compare_arms, expected_share_of, recommend
    from monitoring.replay import ReplayLog
    from monitoring.rules import load_rules

    try:
        monitoring_rules = load_rules(rules)
        replay = ReplayLog.load(log)
        comparison = compare_arms(replay.requests, monitoring_rules.comparison, window,
                                  expected_share_of(replay.meta, expected_canary_percent))
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc))
    recommendation = recommend(comparison, [], monitoring_rules)
    console = Console(width=160)
    if comparison is not None:
        level = f"{1 - comparison.alpha:.0%}"
        table = Table(title=f"canary vs control, looks {comparison.windows} ({comparison.method} test, {level} CI)")
        for col in ("metric", "control", "canary", "lift", f"{level} CI", "p", "p (one look)", "significant"):
            table.add_column(col)
        for m in comparison.metrics.values():
            rel = "n/a" if m.rel_lift is None else f"{m.rel_lift:+.2%}"
            ci = " .. ".join("n/a" if v is None else f"{v:+.2%}" for v in m.rel_ci)
            table.add_row(m.metric, f"{m.control_rate:.4f} (n={m.control_n})", f"{m.canary_rate:.4f} (n={m.canary_n})",
                          rel, ci, f"{m.p_value:.3g}", f"{m.fixed_p_value:.3g}", "yes" if m.significant else "no")
        console.print(table)
        for line in comparison_lines(comparison):
            console.print(line, markup=False)
    console.print(f"recommendation: [bold]{recommendation.action}[/bold] — " + "; ".join(recommendation.reasons))
    if json_out is not None:
        json_out.write_text(json.dumps({"comparison": comparison.model_dump() if comparison else None,
                                        "recommendation": recommendation.model_dump()}, indent=2) + "\n")


@drift_app.command("report")
def drift_report(
    reference: Annotated[str, typer.Option("--reference", help="Reference request log (dir or s3:// URI).")],
    current: Annotated[str, typer.Option("--current", help="Current request log (may equal --reference; then windows split it).")],
    out: Annotated[str, typer.Option("--out", help="Report store (dir or s3:// URI): <run_id>/..., alerts/, latest.json.")],
    rules: RulesOpt = None,
    reference_window: Annotated[Optional[list[int]], typer.Option("--reference-window", help="Reference windows (repeat).")] = None,
    current_window: Annotated[Optional[list[int]], typer.Option("--current-window", help="Current windows (repeat).")] = None,
    run_id: Annotated[Optional[str], typer.Option(help="Run id (default: UTC timestamp).")] = None,
    fail_on: Annotated[Optional[str], typer.Option(help="Exit 3 when an alert of this severity (or worse) fires: critical|warning|info.")] = None,
    expected_canary_percent: ExpectedSplitOpt = None,
) -> None:
    """Evidently drift per arm (reference vs current), arm comparison, alerts and a recommendation."""
    from monitoring.alerts import SEVERITY_ORDER
    from monitoring.report import run_drift_report

    if fail_on is not None and fail_on not in SEVERITY_ORDER:
        fail(f"--fail-on must be one of {sorted(SEVERITY_ORDER)}, got {fail_on!r}", 2)
    try:
        summary = run_drift_report(reference, current, out, rules, reference_windows=reference_window,
                                   current_windows=current_window, run_id=run_id,
                                   expected_canary_percent=expected_canary_percent)
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc))
    typer.echo(f"drift report {summary.run_id}: recommendation {summary.recommendation.action} "
               f"({'; '.join(summary.recommendation.reasons)})")
    for alert in summary.alerts:
        typer.echo(f"  [{alert.severity}] {alert.rule} on {alert.arm}: {alert.message}")
    typer.echo(f"report: {summary.artifacts.index_html}\nsummary: {summary.artifacts.summary_json}")
    if fail_on is not None and any(SEVERITY_ORDER[a.severity] <= SEVERITY_ORDER[fail_on] for a in summary.alerts):
        raise typer.Exit(3)


@drift_app.command("review")
def drift_review(
    store: Annotated[str, typer.Option("--store", envvar="REPORT_URI", help="Report store given to `drift report --out`.")],
    all_: Annotated[bool, typer.Option("--all", help="Also list acknowledged alerts.")] = False,
    ack: Annotated[Optional[list[str]], typer.Option("--ack", help="Acknowledge an alert by id (repeat).")] = None,
    open_: Annotated[bool, typer.Option("--open", help="Open the latest HTML report in a browser.")] = False,
) -> None:
    """List open alerts and point at the HTML report."""
    import webbrowser

    from rich.console import Console
    from rich.table import Table

    from monitoring.alerts import AlertStore
    from monitoring.report import LATEST
    from monitoring.summary import DriftSummary
    from onevision.storage import open_store

    alerts = AlertStore(store)
    for alert_id in ack or []:
        try:
            alerts.acknowledge(alert_id)
        except KeyError as exc:
            fail(str(exc.args[0]))
        typer.echo(f"acknowledged {alert_id}")
    records = alerts.all() if all_ else alerts.open_alerts()
    console = Console(width=200)
    table = Table(title=f"{'all' if all_ else 'open'} alerts in {alerts.store.uri}")
    for col in ("id", "severity", "status", "rule", "metric", "arm", "window", "value", "threshold", "report"):
        table.add_column(col, overflow="fold")
    style = {"critical": "bold red", "warning": "yellow", "info": "cyan"}
    for a in records:
        value = "n/a" if a.value is None else f"{a.value:.4g}"
        table.add_row(a.id, f"[{style[a.severity]}]{a.severity}[/]", a.status, a.rule, a.metric, a.arm, a.window,
                      value, f"{a.threshold:g}", a.report or "")
    console.print(table if records else f"no {'' if all_ else 'open '}alerts in {alerts.store.uri}")
    reports = open_store(store)
    if not reports.exists(LATEST):
        typer.echo("no report yet: run `onevision drift report`")
        return
    run_id = reports.get_json(LATEST)["run_id"]
    typer.echo(f"latest report ({run_id}): {reports.uri_of(f'{run_id}/index.html')}")
    summary = DriftSummary.from_json(reports.get_text(f"{run_id}/summary.json"))
    typer.echo(f"recommendation: {summary.recommendation.action} — {'; '.join(summary.recommendation.reasons)}")
    if summary.comparison is not None:
        for m in summary.comparison.metrics.values():
            rel = "n/a" if m.rel_lift is None else f"{m.rel_lift:+.2%}"
            ci = " .. ".join("n/a" if v is None else f"{v:+.2%}" for v in m.rel_ci)
            typer.echo(f"  {m.metric} lift {rel} [{ci}] p={m.p_value:.3g} ({summary.comparison.method})")
        for line in comparison_lines(summary.comparison):
            typer.echo(line)
    if open_:
        local = reports.local_path(run_id) / "index.html"  # an s3:// store is downloaded first
        webbrowser.open(local.resolve().as_uri())
