"""One model's evaluation result and its stable `metrics.json` form (docs/contracts.md)."""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

METRICS_FILE = "metrics.json"
BUNDLE_KEY = "bundle"  # metrics.json: identity of the evaluated bundle (kind, version, digest)
RANKING_METRICS: tuple[str, ...] = ("recall", "ndcg", "mrr", "hitrate")
PROXY_METRICS: tuple[str, ...] = ("ctr_proxy", "cvr_proxy", "orders_proxy")
LATENCY_KEYS: tuple[str, ...] = ("latency_ms_p50", "latency_ms_p95")
# Personalisation, measured on the same model: the CTR proxy with user_ids withheld, the lift
# (with / without users) and the mean ground-truth preference score of slots 2..k of the slate.
PERSONALISATION_METRICS: tuple[str, ...] = ("ctr_proxy_without_users", "personalisation_lift", "slate_preference")
DEFAULT_KS: tuple[int, ...] = (1, 10, 50)
DEFAULT_PROXY_K = 10


def metric_keys(ks: Sequence[int] = DEFAULT_KS, proxy_k: int = DEFAULT_PROXY_K) -> tuple[str, ...]:
    """The metric keys in their stable order (everything of metrics.json except model and n_queries)."""
    ranking = tuple(f"{m}@{k}" for m in RANKING_METRICS for k in ks)
    proxies = tuple(f"{m}@{proxy_k}" for m in PROXY_METRICS + PERSONALISATION_METRICS)
    return ranking + proxies + LATENCY_KEYS


STABLE_KEYS: tuple[str, ...] = ("model", "n_queries", *metric_keys())


def _round(value: float | None) -> float | None:
    """6 decimals; NaN/inf (an undefined metric, e.g. HitRate without any ordered query) becomes null."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), 6)


@dataclass
class EvaluationResult:
    model: str
    n_queries: int
    metrics: dict[str, float | None]  # metric_keys() order, latency included
    # Run details that are not part of the stable metrics.json schema (None when loaded from a file).
    split: str | None = None
    personalized: bool | None = None
    batch_latency_ms_per_query: float | None = None
    latency_source: str | None = None  # "batch-1 sample of N queries" or "batched"
    seconds: float | None = field(default=None, compare=False)
    bundle: dict | None = None  # the evaluated bundle's identity (onevision.bundle.bundle_identity), if known

    def __getitem__(self, key: str) -> float | None:
        try:
            return self.metrics[key]
        except KeyError:
            raise KeyError(f"metric '{key}' is not in the result of '{self.model}'; it has {list(self.metrics)}") from None

    def to_json(self) -> dict:
        out = {"model": self.model, "n_queries": int(self.n_queries), **{k: _round(v) for k, v in self.metrics.items()}}
        if self.bundle is not None:
            out[BUNDLE_KEY] = dict(self.bundle)
        return out

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / METRICS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2, allow_nan=False) + "\n")
        return path

    @classmethod
    def from_json(cls, data: Mapping, source: str = "metrics") -> EvaluationResult:
        for key in ("model", "n_queries"):
            if key not in data:
                raise ValueError(f"'{key}' is missing from {source}; expected the keys {list(STABLE_KEYS)}")
        metrics = {k: (None if v is None else float(v)) for k, v in data.items()
                   if k not in ("model", "n_queries", BUNDLE_KEY)}
        bundle = data.get(BUNDLE_KEY)
        return cls(model=str(data["model"]), n_queries=int(data["n_queries"]), metrics=metrics,
                   bundle=dict(bundle) if isinstance(bundle, Mapping) else None)


def load_result(path: str | Path) -> EvaluationResult:
    """Read a metrics.json (or the directory that holds one)."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    if not path.exists():
        raise FileNotFoundError(f"metrics file not found: {path}")
    return EvaluationResult.from_json(json.loads(path.read_text()), source=str(path))


def _cell(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.4f}" if abs(value) < 1000 else f"{value:.0f}"


def compare_table(results: Iterable[EvaluationResult]) -> str:
    """A Markdown table: one row per metric, one column per model."""
    results = list(results)
    if not results:
        raise ValueError("compare_table needs at least one EvaluationResult")
    keys: list[str] = []
    for r in results:
        keys.extend(k for k in r.metrics if k not in keys)
    lines = [
        "| metric | " + " | ".join(r.model for r in results) + " |",
        "|---|" + "---:|" * len(results),
        "| n_queries | " + " | ".join(str(r.n_queries) for r in results) + " |",
    ]
    lines += [f"| {k} | " + " | ".join(_cell(r.metrics.get(k)) for r in results) + " |" for k in keys]
    return "\n".join(lines) + "\n"
