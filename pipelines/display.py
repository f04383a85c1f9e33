"""Console output of a local run: one line per step as it happens, then the summary tables (rich)."""
from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pipelines.graph import PipelineGraph
from pipelines.local import LocalRunResult
from pipelines.summary import RunSummary


class ConsoleProgress:
    """A `ProgressListener` printing each step's start, end (with time) and failure or skip reason."""

    def __init__(self, console: Console, graph: PipelineGraph) -> None:
        self.console, self.graph = console, graph
        self.total, self.done = len(graph.leaves()), 0

    def task_started(self, task: str) -> None:
        self.console.print(f"[cyan]▶[/] [{self.done + 1}/{self.total}] {escape(self.graph.display_name(task))} "
                           f"[dim]({task})[/]")

    def task_finished(self, task: str, succeeded: bool, seconds: float, error: str | None) -> None:
        self.done += 1
        name = escape(self.graph.display_name(task))
        if succeeded:
            self.console.print(f"  [green]✓[/] {name} [dim]{seconds:.1f}s[/]")
            return
        self.console.print(f"  [bold red]✗ {name} FAILED[/] [dim]{seconds:.1f}s[/]")
        if error:
            self.console.print(escape(error), style="red", soft_wrap=True)

    def task_cached(self, task: str) -> None:
        self.done += 1
        self.console.print(f"  [blue]≡[/] {escape(self.graph.display_name(task))} [dim]cached[/]")

    def task_skipped(self, task: str, reason: str) -> None:
        node = self.graph.nodes.get(task)
        for leaf in self.graph.leaves_under(task) if node is not None and node.is_dag else [task]:
            self.done += 1
            self.console.print(f"  [yellow]–[/] {escape(self.graph.display_name(leaf))} skipped [dim]({reason})[/]")


def _num(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:.4f}" if abs(x) < 10 else f"{x:,.1f}"


def _rel(path: Path | None, base: Path) -> str:
    if path is None:
        return "—"
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def render_run(run: LocalRunResult, console: Console) -> RunSummary:
    """Print the step table and, for the train pipeline, data checks, VRQ, parity, gate and archive."""
    steps = Table(title=f"{run.pipeline}: {'succeeded' if run.succeeded else 'FAILED'} in {run.seconds:.0f}s",
                  title_justify="left")
    for col in ("step", "task", "status", "time"):
        steps.add_column(col, justify="right" if col == "time" else "left")
    colours = {"succeeded": "green", "cached": "blue", "failed": "bold red", "skipped": "yellow", "not run": "dim"}
    for t in run.tasks.values():
        steps.add_row(escape(t.display_name), t.name, f"[{colours[t.status]}]{t.status}[/]",
                      "" if t.seconds is None else f"{t.seconds:.1f}s")
    console.print(steps)
    summary = RunSummary.from_run(run)
    if run.pipeline != "onevision-train":
        console.print(f"run directory: {run.run_dir}")
        return summary

    if summary.data_checks:
        data = Table(title="data checks", title_justify="left")
        for col in ("table", "rows", "expectations", "passed", "failed"):
            data.add_column(col, justify="left" if col == "table" else "right")
        for c in summary.data_checks:
            data.add_row(c.table, "—" if c.rows is None else str(c.rows), str(c.expectations), str(c.passed),
                         f"[red]{c.failed}[/]" if c.failed else "0")
        console.print(data)
        for failure in summary.data_failures:
            console.print(f"  [red]✗[/] {escape(failure)}")
    if summary.vrq_metrics:
        vrq = Table(title="VRQ", title_justify="left")
        vrq.add_column("metric")
        vrq.add_column("value", justify="right")
        for key, value in summary.vrq_metrics.items():
            vrq.add_row(escape(key), _num(value))
        console.print(vrq)
    if summary.parity:
        parity = Table(title="parity: generator vs cascade", title_justify="left")
        for col in ("metric", "cascade", "generator", "ratio", "threshold", "status"):
            parity.add_column(col, justify="left" if col in ("metric", "status") else "right")
        for r in summary.parity:
            status = {"pass": "[green]pass[/]", "not gated": "[dim]not gated[/]"}.get(r.status, f"[red]{r.status}[/]")
            parity.add_row(r.metric, _num(r.cascade), _num(r.generator), _num(r.ratio), _num(r.threshold), status)
        console.print(parity)
    if summary.gate_passed is not None:
        verdict = "[bold green]PASSED[/]" if summary.gate_passed else "[bold red]FAILED[/]"
        console.print(f"gate: {verdict}")
        for reason in summary.gate_reasons:
            console.print(f"  - {escape(reason)}")
    base = run.run_dir
    if summary.archive is not None:
        console.print(f"archive: {_rel(summary.archive, base)}/")
        console.print("  " + ", ".join(_rel(f, summary.archive) for f in summary.archive_files), soft_wrap=True)
    if summary.deployment is not None:
        files = ", ".join(_rel(f, base) for f in summary.deployment_files) or _rel(summary.deployment, base)
        console.print(f"deployment: {files}", soft_wrap=True)
        if summary.deployed_to:
            console.print(f"model store: {summary.deployed_to}", soft_wrap=True)
    if summary.reasons_report is not None:
        console.print(f"not archived, not deployed; reasons: {_rel(summary.reasons_report, base)}", soft_wrap=True)
    console.print(f"run directory: {base} (logs/, summary.json)", soft_wrap=True)
    return summary
