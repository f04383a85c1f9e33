"""Helpers the component bodies import at run time (inside the container or the local subprocess).

Component functions are shipped as source, so anything beyond the one library call lives here:
typed step configs from pipeline parameters, checking input artifacts, logging scalars to KFP.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

PRESETS = ("default", "tiny")  # onevision.steps.StepConfigs() and onevision.steps.tiny_configs()


class MissingArtifactError(FileNotFoundError):
    """An input artifact a step needs is absent or empty."""


class MetricsArtifact(Protocol):
    path: str
    metadata: dict

    def log_metric(self, metric: str, value: float) -> None: ...


class ArtifactLike(Protocol):
    name: str
    uri: str
    path: str


def step_config(step: str, preset: str = "default", overrides: Mapping[str, Any] | None = None) -> Any:
    """The typed config of `step` (a field of `onevision.steps.StepConfigs`): the preset's, with `overrides`
    (a pipeline parameter dict) applied.

    Nested dataclass fields take nested dicts; unknown keys are an error naming the valid ones.
    """
    from onevision.steps import StepConfigs, tiny_configs

    steps = [f.name for f in dataclasses.fields(StepConfigs)]
    if step not in steps:
        raise ValueError(f"unknown step {step!r}; expected one of {sorted(steps)}")
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r} for the {step} config; expected one of {list(PRESETS)}")
    base = getattr(tiny_configs() if preset == "tiny" else StepConfigs(), step)
    return apply_overrides(base, dict(overrides or {}), f"{step} config")


def apply_overrides(config: Any, overrides: Mapping[str, Any], what: str) -> Any:
    """`config` with `overrides` applied, validated into its typed config class.

    Pipeline dict parameters travel through protobuf Struct, so every number arrives as a float: an integer
    field takes 500.0 as 500 but refuses 2.5, lists become tuples, nested dicts nested dataclasses. Unknown
    keys and values of the wrong type raise ValueError naming the field."""
    if not overrides:
        return config
    _check_keys(config, overrides, what)
    from pydantic import TypeAdapter, ValidationError

    merged = _merged(config, overrides)
    try:
        return TypeAdapter(type(config)).validate_python(merged)
    except ValidationError as exc:
        problems = "; ".join(f"{what}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (got {e.get('input')!r})"
                             for e in exc.errors())
        raise ValueError(f"invalid {what}: {problems}") from None


def _check_keys(config: Any, overrides: Mapping[str, Any], what: str) -> None:
    fields = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown {what} key(s) {unknown}; expected some of {sorted(fields)}")
    for key, value in overrides.items():
        current = getattr(config, key)
        if dataclasses.is_dataclass(current) and isinstance(value, Mapping):
            _check_keys(current, value, f"{what}.{key}")


def _merged(config: Any, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The config's fields (nested configs as dicts) with `overrides` laid over them."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        current = getattr(config, f.name)
        if f.name not in overrides:
            out[f.name] = _merged(current, {}) if dataclasses.is_dataclass(current) else current
        elif dataclasses.is_dataclass(current) and isinstance(overrides[f.name], Mapping):
            out[f.name] = _merged(current, overrides[f.name])
        else:
            out[f.name] = overrides[f.name]
    return out


def input_dir(artifact: ArtifactLike | None, what: str) -> Path:
    """The local directory of an input artifact; an error naming the artifact when it is missing."""
    if artifact is None:
        raise MissingArtifactError(f"input artifact '{what}' was not provided")
    path = Path(artifact.path)
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        raise MissingArtifactError(
            f"input artifact '{what}' ({artifact.name}) has no content at {path} (uri {artifact.uri}); "
            "expected the directory its producing step writes"
        )
    return path


def output_dir(artifact: ArtifactLike) -> Path:
    """An empty directory at the output artifact's path (KFP uploads the whole directory)."""
    path = Path(artifact.path)
    if path.exists():
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    path.mkdir(parents=True)
    return path


def flat_scalars(values: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Finite numbers (bools as 0/1) of a nested mapping, keys joined with '.'; list items as name.1, name.2, ..."""
    out: dict[str, float] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flat_scalars(value, f"{name}."))
        elif isinstance(value, (list, tuple)):
            out.update(flat_scalars({str(i + 1): v for i, v in enumerate(value)}, f"{name}."))
        elif isinstance(value, (bool, int, float)) and math.isfinite(float(value)):
            out[name] = float(value)
    return out


def peak_rss_mb() -> float:
    """Peak resident memory of this step's process and of its finished children (torchrun ranks), in MiB."""
    import resource

    kib = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return round(kib / 1024.0, 1)


def log_scalars(metrics: MetricsArtifact, values: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Log every finite scalar of `values`, and the step's peak memory so far (`peak_rss_mb`), with
    `metrics.log_metric` (the KFP UI shows them).

    The metrics are also written as JSON at the artifact's path: an artifact with no file is treated as
    missing (kfp.local's cache ignores entries whose artifacts do not exist).
    """
    scalars = {**flat_scalars(values, prefix), "peak_rss_mb": peak_rss_mb()}
    for name, value in scalars.items():
        metrics.log_metric(name, value)
    path = Path(metrics.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(metrics.metadata), indent=2, sort_keys=True) + "\n")
    return scalars


def use_s3_endpoint(endpoint: str) -> None:
    """Point `onevision.storage` at an S3-compatible endpoint (MinIO); credentials come from the env."""
    if endpoint:
        os.environ["AWS_ENDPOINT_URL"] = endpoint


def fetch_dir(uri: str, target: Path) -> Path:
    """Copy every artifact under `uri` (local path, file:// or s3://) into `target`."""
    from onevision.storage import open_store

    store = open_store(uri)
    if not store.exists():
        raise MissingArtifactError(f"no data at {store.uri}; expected a directory of artifacts there")
    return store.download_dir("", target)


def write_text(artifact: ArtifactLike, text: str) -> None:
    """Write a single-file artifact (Markdown, HTML) at its path."""
    path = Path(artifact.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def result_dict(result: Any) -> dict[str, Any]:
    """A step result as a JSON-ready dict (`.to_dict()`, a dataclass, a mapping, or a path)."""
    if result is None:
        return {}
    if hasattr(result, "to_dict"):
        return dict(result.to_dict())
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return json_ready(dataclasses.asdict(result))
    if isinstance(result, Mapping):
        return json_ready(dict(result))
    return {"result": str(result)}


def json_ready(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
