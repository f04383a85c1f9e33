"""The parity gate: the generator may replace the cascade only if no gated metric falls more than ε
(relative) below the cascade's. Writes parity.json (machine), parity.md and parity.html (people).

This module is the one reader and writer of parity.json: `ParityReport.save` writes it, `load_parity` reads
a whole report, `parse_verdict` reads the verdict its consumers act on (`serve build --parity`, `canary
promote`) and `require_verdict_for` checks that a verdict judged the model at hand."""
from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from onevision.evaluation.result import BUNDLE_KEY, METRICS_FILE

PARITY_JSON = "parity.json"
PARITY_MD = "parity.md"
PARITY_HTML = "parity.html"
DEFAULT_GATED: tuple[str, ...] = ("recall@10", "ndcg@10", "ctr_proxy@10", "cvr_proxy@10")
# Shown beside the gated metrics in run summaries (not gated): conversion and what personalisation adds.
HEADLINE_REPORTED: tuple[str, ...] = ("orders_proxy@10", "hitrate@1", "personalisation_lift@10", "slate_preference@10")
# metrics.json stores 6 decimals; a difference below this is rounding noise, not a shortfall.
TOLERANCE = 1e-9


class ParityInputError(ValueError):
    """A gated metric is missing from a model's metrics."""


class ParityBindingError(ValueError):
    """A parity verdict used for a model it did not judge, or a failed verdict used to ship one."""


class ParityFormatError(ValueError):
    """A document that is not a parity verdict (not JSON, or no boolean "passed")."""


def _number(value: object) -> float | None:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _numeric(metrics: Mapping[str, object]) -> dict[str, float | None]:
    """The numeric entries of a metrics mapping (drops e.g. "model"); NaN/inf become None."""
    out: dict[str, float | None] = {}
    for k, v in metrics.items():
        if v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)):
            x = _number(v)
            out[k] = x if x is not None and math.isfinite(x) else None
    return out


def _fmt(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:.3f}" if abs(x) >= 0.1 or x == 0 else f"{x:.4f}"


def _eps_factor(epsilon: float) -> str:
    return f"(1 − {epsilon:g})" if epsilon >= 0 else f"(1 + {-epsilon:g})"


@dataclass(frozen=True)
class MetricCheck:
    metric: str
    generator: float | None
    cascade: float | None
    threshold: float | None
    passed: bool
    gated: bool = True

    @property
    def ratio(self) -> float | None:
        if self.generator is None or self.cascade is None or self.cascade == 0:
            return None
        return self.generator / self.cascade

    @property
    def status(self) -> str:
        return ("pass" if self.passed else "FAIL") if self.gated else "not gated"


def _check_metric(metric: str, gen: float | None, cas: float | None, epsilon: float) -> tuple[MetricCheck, str | None]:
    if gen is None or cas is None:
        which = " and ".join(n for n, v in (("generator", gen), ("cascade", cas)) if v is None)
        return MetricCheck(metric, gen, cas, None, False), f"{metric}: {which} value is not a finite number"
    threshold = cas * (1.0 - epsilon)
    if gen >= threshold - TOLERANCE:
        return MetricCheck(metric, gen, cas, threshold, True), None
    shortfall = f"{(gen - cas) / cas * 100:+.1f}%".replace("-", "−") if cas else "n/a"
    reason = (
        f"{metric}: generator {_fmt(gen)} < cascade {_fmt(cas)} × {_eps_factor(epsilon)} = {_fmt(threshold)} ({shortfall})"
    )
    return MetricCheck(metric, gen, cas, threshold, False), reason


@dataclass(frozen=True)
class ParityReport:
    passed: bool
    epsilon: float
    gated_metrics: list[str]
    generator: dict[str, float | None]
    cascade: dict[str, float | None]
    reasons: list[str] = field(default_factory=list)
    # identity of each evaluated bundle (kind, version, digest; onevision.bundle.bundle_identity), so that a
    # verdict can only ever be used for the model it judged
    bundles: dict[str, dict | None] = field(default_factory=lambda: {"generator": None, "cascade": None})

    def to_json(self) -> dict:
        return {
            "passed": self.passed,
            "epsilon": self.epsilon,
            "gated_metrics": list(self.gated_metrics),
            "metrics": {"generator": dict(self.generator), "cascade": dict(self.cascade)},
            "reasons": list(self.reasons),
            "bundles": {k: (None if v is None else dict(v)) for k, v in self.bundles.items()},
        }

    def _bundles_note(self) -> str:
        parts = [f"{arm} {b['version']} ({b['digest'][:19]}…)" for arm, b in self.bundles.items() if b]
        return f"Bundles: {', '.join(parts)}." if parts else ""

    def checks(self) -> list[MetricCheck]:
        """Gated metrics first, then every other metric both models report (informational)."""
        rows = [_check_metric(m, self.generator.get(m), self.cascade.get(m), self.epsilon)[0] for m in self.gated_metrics]
        for m in self.cascade:
            if m in self.generator and m not in self.gated_metrics and m != "n_queries":
                gen, cas = self.generator[m], self.cascade[m]
                rows.append(MetricCheck(m, gen, cas, None, True, gated=False))
        return rows

    def _queries_note(self) -> str:
        gen, cas = self.generator.get("n_queries"), self.cascade.get("n_queries")
        if gen is None or cas is None:
            return ""
        note = f"Queries evaluated: cascade {cas:.0f}, generator {gen:.0f}."
        return note if gen == cas else note + " Warning: the models were not evaluated on the same queries."

    def summary(self) -> str:
        head = f"parity {'PASSED' if self.passed else 'FAILED'} (ε = {self.epsilon:g}, gated: {', '.join(self.gated_metrics)})"
        return "\n".join([head, *(f"  - {r}" for r in self.reasons)])

    def to_markdown(self) -> str:
        lines = [
            f"# Parity: generator vs cascade — {'PASSED' if self.passed else 'FAILED'}",
            "",
            f"Gate: every gated metric ≥ cascade × {_eps_factor(self.epsilon)}. {self._queries_note()} {self._bundles_note()}",
            "",
            "| metric | cascade | generator | ratio | threshold | status |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for c in self.checks():
            ratio = "—" if c.ratio is None else f"{c.ratio:.3f}"
            lines.append(f"| {c.metric} | {_fmt(c.cascade)} | {_fmt(c.generator)} | {ratio} | {_fmt(c.threshold)} | {c.status} |")
        if self.reasons:
            lines += ["", "## Reasons", "", *(f"- {r}" for r in self.reasons)]
        return "\n".join(lines) + "\n"

    def to_html(self) -> str:
        colour = "#1a7f37" if self.passed else "#cf222e"
        rows = []
        for c in self.checks():
            ratio = "—" if c.ratio is None else f"{c.ratio:.3f}"
            cls = {"pass": "pass", "FAIL": "fail"}.get(c.status, "info")
            cells = (c.metric, _fmt(c.cascade), _fmt(c.generator), ratio, _fmt(c.threshold), c.status)
            rows.append(f'<tr class="{cls}">' + "".join(f"<td>{html.escape(x)}</td>" for x in cells) + "</tr>")
        reasons = "".join(f"<li>{html.escape(r)}</li>" for r in self.reasons)
        verdict = "PASSED" if self.passed else "FAILED"
        return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Parity {verdict}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #1f2328; }}
.verdict {{ display: inline-block; padding: .3em .8em; border-radius: 6px; color: #fff; background: {colour}; }}
table {{ border-collapse: collapse; margin-top: 1em; }}
th, td {{ border: 1px solid #d0d7de; padding: .35em .7em; text-align: right; }}
th:first-child, td:first-child, td:last-child {{ text-align: left; }}
tr.fail td {{ background: #ffebe9; }} tr.pass td:last-child {{ color: #1a7f37; }} tr.info td {{ color: #656d76; }}
</style></head><body>
<h1>Parity: generator vs cascade <span class="verdict">{verdict}</span></h1>
<p>Gate: every gated metric &ge; cascade &times; {html.escape(_eps_factor(self.epsilon))}. {html.escape(self._queries_note())} {html.escape(self._bundles_note())}</p>
<table><thead><tr><th>metric</th><th>cascade</th><th>generator</th><th>ratio</th><th>threshold</th><th>status</th></tr></thead>
<tbody>{''.join(rows)}</tbody></table>
{f'<h2>Reasons</h2><ul>{reasons}</ul>' if reasons else ''}
</body></html>
"""

    def save(self, directory: str | Path) -> Path:
        """Writes parity.json, parity.md and parity.html into `directory`; returns the JSON path."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        (out / PARITY_JSON).write_text(json.dumps(self.to_json(), indent=2, allow_nan=False) + "\n")
        (out / PARITY_MD).write_text(self.to_markdown())
        (out / PARITY_HTML).write_text(self.to_html())
        return out / PARITY_JSON


@dataclass(frozen=True)
class ParityGate:
    epsilon: float = 0.02  # allowed relative shortfall; < 0 demands the generator beat the cascade
    metrics: tuple[str, ...] = DEFAULT_GATED

    def __post_init__(self) -> None:
        if not math.isfinite(self.epsilon) or self.epsilon >= 1:
            raise ValueError(f"epsilon must be a finite number < 1, got {self.epsilon}")
        if not self.metrics:
            raise ValueError("ParityGate needs at least one gated metric")
        object.__setattr__(self, "metrics", tuple(self.metrics))

    def check(
        self,
        generator_metrics: Mapping[str, object],
        cascade_metrics: Mapping[str, object],
        generator_source: str = "generator metrics",
        cascade_source: str = "cascade metrics",
    ) -> ParityReport:
        for values, source in ((generator_metrics, generator_source), (cascade_metrics, cascade_source)):
            missing = [m for m in self.metrics if m not in values]
            if missing:
                raise ParityInputError(
                    f"gated metric(s) {missing} missing from {source}; it has {sorted(values)}"
                )
        gen, cas = _numeric(generator_metrics), _numeric(cascade_metrics)
        reasons = [r for m in self.metrics if (r := _check_metric(m, gen.get(m), cas.get(m), self.epsilon)[1])]
        bundles = {arm: _identity(values.get(BUNDLE_KEY))
                   for arm, values in (("generator", generator_metrics), ("cascade", cascade_metrics))}
        return ParityReport(not reasons, self.epsilon, list(self.metrics), gen, cas, reasons, bundles)

    def check_files(self, generator_metrics_json: str | Path, cascade_metrics_json: str | Path) -> ParityReport:
        """Compare two metrics.json files (or the directories holding them)."""
        loaded = [_read_metrics(Path(p)) for p in (generator_metrics_json, cascade_metrics_json)]
        return self.check(loaded[0][0], loaded[1][0], str(loaded[0][1]), str(loaded[1][1]))


def _read_metrics(path: Path) -> tuple[dict, Path]:
    if path.is_dir():
        path = path / METRICS_FILE
    if not path.exists():
        raise FileNotFoundError(f"metrics file not found: {path}")
    return json.loads(path.read_text()), path


def parse_verdict(text: str, where: str = "parity report") -> dict:
    """The parity.json document in `text` (`where` names it in errors), once it is JSON with a boolean "passed"."""
    try:
        report = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParityFormatError(f"{where} is not valid JSON: {exc}") from exc
    if not isinstance(report, dict) or not isinstance(report.get("passed"), bool):
        raise ParityFormatError(f'{where} has no boolean "passed" field; expected {{"passed": true, ...}}')
    return report


def verdict_reasons(report: Mapping[str, object]) -> str:
    """A verdict's reasons as one line ("" when it gives none)."""
    reasons = report.get("reasons")
    return "; ".join(map(str, reasons)) if isinstance(reasons, list) and reasons else ""


def load_parity(path: str | Path) -> ParityReport:
    """Read parity.json (or the directory holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / PARITY_JSON
    if not path.exists():
        raise FileNotFoundError(f"parity report not found: {path}")
    data = json.loads(path.read_text())
    expected = ("passed", "epsilon", "gated_metrics", "metrics", "reasons")
    missing = [k for k in expected if k not in data]
    if missing or not {"generator", "cascade"} <= set(data.get("metrics", {})):
        raise ValueError(f"{path} is not a parity report: expected keys {list(expected)} with metrics.generator/.cascade")
    return ParityReport(
        passed=bool(data["passed"]),
        epsilon=float(data["epsilon"]),
        gated_metrics=list(data["gated_metrics"]),
        generator=_numeric(data["metrics"]["generator"]),
        cascade=_numeric(data["metrics"]["cascade"]),
        reasons=list(data["reasons"]),
        bundles={arm: _identity((data.get("bundles") or {}).get(arm)) for arm in ("generator", "cascade")},
    )


def _identity(value: object) -> dict | None:
    """A bundle identity {"kind", "version", "digest"} or None."""
    if isinstance(value, Mapping) and all(isinstance(value.get(k), str) for k in ("kind", "version", "digest")):
        return {k: value[k] for k in ("kind", "version", "digest")}
    return None


def gate_metrics(names: Sequence[str] | None) -> tuple[str, ...]:
    """Parse a CLI list such as ["recall@10,ndcg@10"] into metric names (None: the defaults)."""
    if not names:
        return DEFAULT_GATED
    return tuple(m.strip() for n in names for m in n.split(",") if m.strip())


def require_verdict_for(report: Mapping[str, object], bundle: Mapping[str, str], where: str = "parity report",
                        allow_failed: bool = False) -> None:
    """Raise ParityBindingError unless `report` (a parity.json document) judged exactly `bundle` (an identity:
    kind, version, digest) as the generator, and passed (or `allow_failed`)."""
    judged = _identity((report.get("bundles") or {}).get("generator") if isinstance(report.get("bundles"), Mapping)
                       else None)
    if judged is None:
        raise ParityBindingError(
            f"{where} names no generator bundle (bundles.generator with kind, version and digest), so it cannot "
            "vouch for any model; run the parity gate on metrics from `onevision evaluate model`")
    if bundle.get("kind") != "generator":
        raise ParityBindingError(
            f"{where} judges generator bundles; {bundle.get('kind')} bundle {bundle.get('version')} is not one")
    if judged["digest"] != bundle.get("digest"):
        raise ParityBindingError(
            f"{where} judged generator {judged['version']} ({judged['digest']}), not bundle "
            f"{bundle.get('version')} ({bundle.get('digest')}); evaluate and gate this bundle")
    if report.get("passed") is not True and not allow_failed:
        why = verdict_reasons(report) or "passed is not true"
        raise ParityBindingError(f"{where} for generator {judged['version']} FAILED: {why}")
