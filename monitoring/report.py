"""`run_drift_report`: reference vs current request logs → Evidently drift per arm, arm comparison,
alerts and a recommendation, written under the report store:

    <out>/<run_id>/index.html            overview: recommendation, lifts, drift table, chart, links
    <out>/<run_id>/evidently_<arm>.html  Evidently's report per arm (+ evidently_<arm>.json snapshot)
    <out>/<run_id>/summary.json          DriftSummary (stable schema, docs/monitoring.md)
    <out>/<run_id>/ctr_cvr.svg           CTR/CVR per window and arm
    <out>/alerts/<alert id>.json         one record per alert (open until acknowledged)
    <out>/latest.json                    {"run_id", "summary", "index_html"} of the last run
"""
from __future__ import annotations

import tempfile
from collections.abc import Sequence
from datetime import datetime, timezone
from html import escape
from pathlib import Path

import pandas as pd

from monitoring.alerts import AlertContext, AlertStore, evaluate_alerts
from monitoring.charts import rate_chart_svg
from monitoring.compare import compare_arms, expected_share_of, recommend
from monitoring.drift import prepare_windows, read_snapshot, run_evidently
from monitoring.replay import ReplayLog
from monitoring.split import ARMS
from monitoring.rules import MonitoringRules, as_rules
from monitoring.summary import Artifacts, ArmDrift, DriftSummary, LogWindow

LATEST = "latest.json"


def _select(requests: pd.DataFrame, windows: Sequence[int], uri: str, role: str) -> pd.DataFrame:
    present = set(int(w) for w in requests["window"].unique())
    missing = sorted(set(windows) - present)
    if missing:
        raise ValueError(f"{role} windows {missing} are not in the log at {uri}; it holds windows {sorted(present)}")
    return requests[requests["window"].isin(list(windows))]


def resolve_windows(reference: ReplayLog, current: ReplayLog, same_log: bool,
                    reference_windows: Sequence[int] | None, current_windows: Sequence[int] | None) -> tuple[list[int], list[int]]:
    """Defaults: one log for both → its first window is the reference and its last the current one;
    two logs → every window of each."""
    ref_all, cur_all = reference.windows(), current.windows()
    if same_log and reference_windows is None and current_windows is None:
        if len(ref_all) < 2:
            raise ValueError(f"the log has a single window {ref_all}; give two logs, or a log with several windows")
        return [ref_all[0]], [ref_all[-1]]
    return (list(reference_windows) if reference_windows is not None else ref_all,
            list(current_windows) if current_windows is not None else cur_all)


def _arm_drift(arm: str, ref: pd.DataFrame, cur: pd.DataFrame, rules: MonitoringRules, tmp: Path,
               stores: list, run_id: str) -> ArmDrift:
    model = next(iter(cur["model"].dropna().unique()), None) if "model" in cur.columns and len(cur) else None
    base = dict(arm=arm, model=None if model is None else str(model), n_reference=len(ref), n_current=len(cur))
    if min(len(ref), len(cur)) < rules.drift.min_requests:
        return ArmDrift(**base, status="insufficient_data", metrics=[], families=[], skipped=[], report_html=None,
                        snapshot_json=None)
    prepared = prepare_windows(ref, cur, rules.drift)
    if not prepared.tests:
        return ArmDrift(**base, status="insufficient_data", metrics=[], families=[], skipped=prepared.skipped,
                        report_html=None, snapshot_json=None)
    snapshot = run_evidently(prepared, rules.drift)
    metrics, families = read_snapshot(snapshot.dict(), prepared, rules.drift)
    html, js = tmp / f"evidently_{arm}.html", tmp / f"evidently_{arm}.json"
    snapshot.save_html(str(html))
    js.write_text(snapshot.json())
    for store in stores:
        for path in (html, js):
            store.upload_file(path, f"{run_id}/{path.name}")
    link = stores[-1]
    return ArmDrift(**base, status="tested", metrics=metrics, families=families, skipped=prepared.skipped,
                    report_html=link.uri_of(f"{run_id}/{html.name}"), snapshot_json=link.uri_of(f"{run_id}/{js.name}"))


def run_drift_report(
    reference_uri: str, current_uri: str, out_uri: str, rules: MonitoringRules | str | Path | None = None,
    *, reference_windows: Sequence[int] | None = None, current_windows: Sequence[int] | None = None,
    run_id: str | None = None, now: datetime | None = None, publish_uri: str | None = None,
    expected_canary_percent: float | None = None,
) -> DriftSummary:
    """The drift report of the KFP pipeline and the CronJob (`onevision drift report`).

    `publish_uri`: a second report store that receives the same files (e.g. the KFP component writes to
    its output artifact and publishes to s3://...); links in the summary and alerts then point there.
    The arm comparison is `ab compare`'s on the current log, every look up to the last current window
    (the same windows, so both reach the same decision); `expected_canary_percent` overrides the split that
    the log's metadata records, for the sample-ratio check."""
    import evidently

    from onevision.storage import open_store

    rules = as_rules(rules)
    now = now or datetime.now(timezone.utc)
    run_id = run_id or now.strftime("%Y%m%dT%H%M%SZ")
    same = str(reference_uri) == str(current_uri)
    reference = ReplayLog.load(reference_uri)
    current = reference if same else ReplayLog.load(current_uri)
    ref_w, cur_w = resolve_windows(reference, current, same, reference_windows, current_windows)
    ref_rows = _select(reference.requests, ref_w, str(reference_uri), "reference")
    cur_rows = _select(current.requests, cur_w, str(current_uri), "current")

    stores = [open_store(out_uri)] + ([open_store(publish_uri)] if publish_uri else [])
    link = stores[-1]
    arms: dict[str, ArmDrift] = {}
    with tempfile.TemporaryDirectory(prefix="onevision-drift-") as tmp:
        for arm in ARMS:
            arms[arm] = _arm_drift(arm, ref_rows[ref_rows["arm"] == arm], cur_rows[cur_rows["arm"] == arm], rules,
                                   Path(tmp), stores, run_id)
    until = max(cur_w)
    comparison = compare_arms(current.requests[current.requests["window"] <= until], rules.comparison,
                              expected_canary_share=expected_share_of(current.meta, expected_canary_percent))
    window_label = f"reference {ref_w} -> current {cur_w}"
    summary_uri = link.uri_of(f"{run_id}/summary.json")
    ctx = AlertContext(run_id=run_id, created=now.isoformat(), window=window_label, summary_uri=summary_uri)
    alerts = evaluate_alerts(arms, comparison, rules, ctx)
    recommendation = recommend(comparison, alerts, rules)

    split = current.meta.get("canary_start_day")
    first_day = current.meta.get("first_day")
    hours = current.meta.get("config", {}).get("window_hours", 24)
    split_window = (split - first_day) * 24 // hours if split is not None and first_day is not None else None
    chart = rate_chart_svg(current.requests, split_window=split_window,
                           canary_percent=current.meta.get("config", {}).get("canary_percent"),
                           reference_windows=ref_w if same else (), current_windows=cur_w)
    summary = DriftSummary(
        run_id=run_id, created=now.isoformat(), evidently_version=evidently.__version__,
        reference=LogWindow(uri=str(reference_uri), windows=ref_w, n_requests=len(ref_rows)),
        current=LogWindow(uri=str(current_uri), windows=cur_w, n_requests=len(cur_rows)),
        arms=arms, comparison=comparison, recommendation=recommendation, alerts=alerts,
        artifacts=Artifacts(index_html=link.uri_of(f"{run_id}/index.html"), summary_json=summary_uri,
                            chart_svg=link.uri_of(f"{run_id}/ctr_cvr.svg")),
    )
    page = index_html(summary, chart)
    for store in stores:
        store.put_text(f"{run_id}/ctr_cvr.svg", chart)
        store.put_text(f"{run_id}/index.html", page)
        store.put_text(f"{run_id}/summary.json", summary.to_json() + "\n")
        AlertStore(store.uri).write(alerts)
        store.put_json(LATEST, {"run_id": run_id, "summary": summary_uri, "index_html": summary.artifacts.index_html})
    return summary


def _relative(uri: str | None, run_id: str) -> str:
    """Links inside index.html point at the sibling files of the same run directory."""
    if not uri:
        return ""
    marker = f"/{run_id}/"
    return uri.split(marker, 1)[1] if marker in uri else uri


def index_html(summary: DriftSummary, chart_svg: str) -> str:
    rec = summary.recommendation
    colour = {"promote": "#2ca02c", "hold": "#ff7f0e", "rollback": "#d62728"}[rec.action]
    rows = []
    for arm in summary.arms.values():
        link = f'<a href="{escape(_relative(arm.report_html, summary.run_id))}">Evidently report</a>' if arm.report_html else ""
        for m in arm.metrics:
            score = "n/a" if m.score is None else f"{m.score:.4g}"
            flag = "DRIFT" if m.drifted else "ok"
            rows.append(f"<tr class='{flag.lower()}'><td>{arm.arm}</td><td>{m.family}</td><td>{escape(m.name)}</td>"
                        f"<td>{m.method}</td><td>{score}</td><td>{m.threshold:g}</td><td>{flag}</td><td>{link}</td></tr>")
        for s in arm.skipped:
            rows.append(f"<tr><td>{arm.arm}</td><td></td><td>{escape(s.name)}</td><td colspan='4'>skipped: "
                        f"{escape(s.reason)}</td><td></td></tr>")
        if arm.status != "tested":
            rows.append(f"<tr><td>{arm.arm}</td><td colspan='7'>not tested: {arm.n_reference} reference / "
                        f"{arm.n_current} current requests</td></tr>")
    lifts, split_html = [], ""
    if summary.comparison:
        comparison = summary.comparison
        for m in comparison.metrics.values():
            rel = "n/a" if m.rel_lift is None else f"{m.rel_lift:+.2%}"
            ci = " .. ".join("n/a" if v is None else f"{v:+.2%}" for v in m.rel_ci)
            cuped = (f"{m.cuped.variance_reduction:.0%} less variance" if m.cuped.applied and m.cuped.variance_reduction is not None
                     else f"not applied: {m.cuped.reason}")
            lifts.append(f"<tr><td>{m.metric}</td><td>{m.control_rate:.4f} (n={m.control_n})</td><td>{m.canary_rate:.4f} "
                         f"(n={m.canary_n})</td><td>{rel}</td><td>[{ci}]</td><td>{m.p_value:.3g}</td>"
                         f"<td>{m.fixed_p_value:.3g}</td><td>{'yes' if m.significant else 'no'}</td>"
                         f"<td>{escape(cuped)}</td></tr>")
        srm = comparison.srm
        colour_srm = "#d62728" if srm.mismatch or not srm.checked else "#2ca02c"
        p_seq = "n/a" if srm.sequential_p_value is None else f"{srm.sequential_p_value:.3g}"
        p_chi = "n/a" if srm.chi_square_p_value is None else f"{srm.chi_square_p_value:.3g}"
        split_html = (f"<p style='color:{colour_srm}'><b>Sample ratio ({'MISMATCH' if srm.mismatch else 'ok' if srm.checked else 'not checked'})"
                 f"</b>: {escape(srm.reason)}; chi-square p={p_chi}, sequential p={p_seq}, alpha={srm.alpha:g}.</p>"
                 f"<p>Looks: windows {comparison.windows} (cumulative; pre-period {comparison.pre_period_windows}); "
                 f"{comparison.method} test, intervals at {1 - comparison.alpha:.0%}"
                 + (f", mixing sd tau={comparison.tau:g}" if comparison.method == "sequential" else "") + ".</p>")
    alerts = "".join(f"<li><b>{a.severity}</b> {escape(a.rule)} on {a.arm}: {escape(a.message)}</li>" for a in summary.alerts)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>OneVision drift report {escape(summary.run_id)}</title>
<style>body{{font-family:Helvetica,Arial,sans-serif;margin:24px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;font-size:13px}}tr.drift td{{background:#fdecea}}</style></head>
<body><h1>Drift report {escape(summary.run_id)}</h1>
<p>Reference: {escape(summary.reference.uri)} windows {summary.reference.windows} ({summary.reference.n_requests} requests);
current: {escape(summary.current.uri)} windows {summary.current.windows} ({summary.current.n_requests} requests).
Evidently {escape(summary.evidently_version)}.</p>
<h2 style="color:{colour}">Recommendation: {rec.action}</h2><ul>{''.join(f'<li>{escape(r)}</li>' for r in rec.reasons)}</ul>
<h2>Alerts ({len(summary.alerts)})</h2><ul>{alerts or '<li>none</li>'}</ul>
<h2>Canary vs control (since the canary started, up to the current window)</h2>{split_html}
<table><tr><th>metric</th><th>control</th><th>canary</th><th>lift</th><th>CI</th><th>p</th><th>p (one look)</th>
<th>significant</th><th>CUPED</th></tr>
{''.join(lifts) or '<tr><td colspan=9>no traffic on one arm</td></tr>'}</table>
<h2>CTR / CVR over time</h2>{chart_svg}
<h2>Drift tests (Evidently)</h2>
<table><tr><th>arm</th><th>family</th><th>test</th><th>method</th><th>score</th><th>threshold</th><th>result</th><th>report</th></tr>
{''.join(rows)}</table>
<p><a href="summary.json">summary.json</a></p></body></html>
"""
