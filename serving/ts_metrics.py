"""TorchServe's metrics config (``metrics_config``): TorchServe's own default metrics plus the handler's custom
counters. In Prometheus mode TorchServe only exposes backend metrics its metrics config declares, so a counter the
handler adds without a declaration would stay in the model log."""
from __future__ import annotations

from pathlib import Path

import yaml

from onevision.featurestore.reader import COUNTERS

METRICS_FILE = "metrics.yaml"
FEATURE_METRIC = "UserFeature{}"  # one counter per onevision.featurestore.reader.COUNTERS entry
MODEL_DIMENSIONS = ("ModelName", "Level")  # what TorchServe adds to a model metric without explicit dimensions


def feature_metric_names() -> list[str]:
    return [FEATURE_METRIC.format(name.capitalize()) for name in COUNTERS]


def _torchserve_defaults() -> dict:
    import ts

    return yaml.safe_load((Path(ts.__file__).parent / "configs" / METRICS_FILE).read_text())


def render_metrics_config() -> str:
    config = _torchserve_defaults()
    model = config.setdefault("model_metrics", {}) or {}
    config["model_metrics"] = model
    counters = [c for c in model.get("counter") or [] if c["name"] not in feature_metric_names()]
    counters += [{"name": name, "unit": "Count", "dimensions": list(MODEL_DIMENSIONS)} for name in feature_metric_names()]
    model["counter"] = counters
    return "# TorchServe metrics: its defaults plus OneVision's counters; written by onevision.\n" + yaml.safe_dump(
        config, sort_keys=False)


def write_metrics_config(path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_metrics_config())
    return path
