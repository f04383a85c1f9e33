"""Run a pipeline on this machine with KFP's own local runner (`kfp.local.SubprocessRunner`).

Every task runs ``python -m kfp.dsl.executor_main`` in a subprocess of *this* interpreter
(`sys.executable` replaces ``python3`` in the component command; ``use_venv=False`` and components built
with ``install_kfp_package=False`` mean no per-task install). The subprocess imports our packages from
the same source tree: PYTHONPATH is prefixed with the project root for the run. kfp-kubernetes settings
(the S3 secret) and resource requests are ignored locally.

Layout of a run directory::

    <run_dir>/<pipeline>-<timestamp>/<task>/<output>   every artifact (kfp.local's pipeline_root layout)
    <run_dir>/<pipeline>-<timestamp>/<task>/executor_output.json   output parameters and metrics
    <run_dir>/logs/pipeline.log, logs/<task>.log        kfp.local's log and each task's output
    <run_dir>/model-store/<version>/                     the local deploy's storage_uri (train pipeline)
    <run_dir>/summary.json
    <run_dir>/.kfp-cache/                                kfp.local's task cache (with caching on)

With caching on, a task whose component code and inputs are unchanged is not run again: its outputs are
those of the earlier run (under the same cache directory) that produced them. Tasks with caching
disabled in the pipeline (data validation, deploy) always run.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.graph import PipelineGraph
from pipelines.progress import ProgressListener, ProgressStream, log_to

EXECUTOR_OUTPUT = "executor_output.json"
CACHE_DIR = ".kfp-cache"
_ARTIFACT_MARKER = "__kfp_artifact__"  # how kfp.local's cache entries mark an artifact output
# kfp.local warnings that are expected for every task of our pipelines.
_EXPECTED_WARNINGS = (
    (".*non-Python base image.*", RuntimeWarning),  # our image is not named "python..."
    (".*have no effect in the current local runner.*", UserWarning),  # display names, resources
)
PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOCAL_TRAIN_DEFAULTS = {"deploy_target": "local"}  # storage_uri defaults to file://<run_dir>/model-store


class MissingRunOutputError(FileNotFoundError):
    """A run has no artifact under the task/output named in the message."""


@dataclass(frozen=True)
class TaskResult:
    name: str  # task key, e.g. "train-generator-2"
    display_name: str  # e.g. "generator stage 2"
    status: str  # "succeeded" | "cached" | "failed" | "skipped" | "not run"
    seconds: float | None = None
    artifacts: dict[str, Path] = field(default_factory=dict)  # output name -> local path
    metadata: dict[str, dict] = field(default_factory=dict)  # output name -> artifact metadata (metrics)
    parameters: dict[str, Any] = field(default_factory=dict)  # output parameters
    error: str | None = None
    skip_reason: str | None = None


@dataclass(frozen=True)
class LocalRunResult:
    pipeline: str
    run_dir: Path
    pipeline_dir: Path | None  # <run_dir>/<pipeline>-<timestamp>
    arguments: dict[str, Any]
    tasks: dict[str, TaskResult]
    error: str | None  # kfp.local's failure message; None when the run succeeded
    seconds: float

    @property
    def succeeded(self) -> bool:
        return self.error is None

    @property
    def failed_tasks(self) -> list[str]:
        return [t.name for t in self.tasks.values() if t.status == "failed"]

    def task(self, name: str) -> TaskResult:
        if name not in self.tasks:
            raise KeyError(f"pipeline {self.pipeline} has no task {name!r}; it has {sorted(self.tasks)}")
        return self.tasks[name]

    def artifact(self, task: str, output: str) -> Path:
        """The local path of `task`'s output `output`; an error naming both when the run did not write it."""
        result = self.task(task)
        path = result.artifacts.get(output)
        if path is None or not path.exists():
            have = sorted(result.artifacts) or "none"
            raise MissingRunOutputError(
                f"run {self.pipeline_dir or self.run_dir} has no artifact '{output}' of task '{task}' "
                f"(task {result.status}; its artifacts: {have})"
            )
        return path

    def to_dict(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline, "run_dir": str(self.run_dir),
            "pipeline_dir": str(self.pipeline_dir) if self.pipeline_dir else None,
            "succeeded": self.succeeded, "error": self.error, "seconds": round(self.seconds, 2),
            "arguments": self.arguments,
            "tasks": {
                t.name: {"display_name": t.display_name, "status": t.status,
                         "seconds": None if t.seconds is None else round(t.seconds, 2),
                         "artifacts": {k: str(v) for k, v in t.artifacts.items()},
                         "metrics": t.metadata, "parameters": t.parameters, "error": t.error, "skip_reason": t.skip_reason}
                for t in self.tasks.values()
            },
        }


class _NullListener:
    def task_started(self, task: str) -> None: ...
    def task_finished(self, task: str, succeeded: bool, seconds: float, error: str | None) -> None: ...
    def task_skipped(self, task: str, reason: str) -> None: ...
    def task_cached(self, task: str) -> None: ...


@contextlib.contextmanager
def _project_on_pythonpath() -> Iterator[None]:
    """Task subprocesses import `onevision`, `components`, `serving`, `monitoring` from this tree."""
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), before) if p)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before


def _pipeline_dirs(run_dir: Path, pipeline: str) -> set[Path]:
    return {p for p in run_dir.glob(f"{pipeline}-*") if p.is_dir()}


def _outputs_of(written: Mapping[str, Any]) -> tuple[dict[str, Path], dict[str, dict], dict[str, Any]]:
    """Artifacts, their metadata and parameters from an executor_output.json."""
    artifacts: dict[str, Path] = {}
    metadata: dict[str, dict] = {}
    for name, group in written.get("artifacts", {}).items():
        for artifact in group.get("artifacts", []):
            metadata[name] = dict(artifact.get("metadata", {}))
            if artifact.get("uri"):
                artifacts[name] = Path(artifact["uri"])
    return artifacts, metadata, dict(written.get("parameterValues", {}))


def _cached_outputs(cache_dir: Path, key_prefix: str) -> tuple[dict[str, Path], dict[str, dict], dict[str, Any]]:
    """Artifacts, metadata and parameters of a kfp.local cache entry (``<cache>/<key>.json``)."""
    entries = sorted(cache_dir.glob(f"{key_prefix}*.json"))
    if not entries:
        return {}, {}, {}
    artifacts: dict[str, Path] = {}
    metadata: dict[str, dict] = {}
    parameters: dict[str, Any] = {}
    for name, value in json.loads(entries[0].read_text()).items():
        if isinstance(value, dict) and value.get(_ARTIFACT_MARKER):
            artifacts[name] = Path(value["uri"])
            metadata[name] = dict(value.get("metadata") or {})
        else:
            parameters[name] = value
    return artifacts, metadata, parameters


def _task_result(name: str, display: str, task_dir: Path | None, stream: ProgressStream,
                 skipped: Mapping[str, str], cache_dir: Path) -> TaskResult:
    timing = stream.timings.get(name)
    seconds = timing.seconds if timing else None
    if name in stream.cached:
        return TaskResult(name, display, "cached", None, *_cached_outputs(cache_dir, stream.cached[name]))
    if task_dir is None or not task_dir.is_dir():
        status = "skipped" if name in skipped else "not run"
        return TaskResult(name, display, status, seconds, skip_reason=skipped.get(name))
    output_file = task_dir / EXECUTOR_OUTPUT
    if output_file.exists() and not (timing is not None and timing.succeeded is False):
        artifacts, metadata, parameters = _outputs_of(json.loads(output_file.read_text()))
        return TaskResult(name, display, "succeeded", seconds, artifacts, metadata, parameters)
    # A failed task leaves what it wrote before failing (e.g. the validation report) at its output paths.
    artifacts = {p.name: p for p in sorted(task_dir.iterdir()) if p.name != EXECUTOR_OUTPUT}
    return TaskResult(name, display, "failed", seconds, artifacts, error=timing.error if timing else None)


def _collect(pipeline: str, graph: PipelineGraph, run_dir: Path, pipeline_dir: Path | None, cache_dir: Path,
             stream: ProgressStream, arguments: dict[str, Any], error: str | None, seconds: float) -> LocalRunResult:
    skipped = dict(stream.skipped)
    for dag_task, reason in stream.skipped.items():
        for leaf in graph.leaves_under(dag_task):
            skipped.setdefault(leaf, reason)
    tasks = {
        node.name: _task_result(node.name, node.display_name, pipeline_dir / node.name if pipeline_dir else None,
                                stream, skipped, cache_dir)
        for node in graph.leaves()
    }
    return LocalRunResult(pipeline, run_dir, pipeline_dir, arguments, tasks, error, seconds)


def local_arguments(pipeline: str, run_dir: Path, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
    """The train and refresh pipelines deploy locally by default: manifest + model store under the run directory."""
    args = dict(arguments or {})
    if pipeline in ("onevision-train", "onevision-refresh"):
        for key, value in LOCAL_TRAIN_DEFAULTS.items():
            args.setdefault(key, value)
        args.setdefault("storage_uri", (run_dir / "model-store").as_uri())  # file://: a URI, as KServe expects
    return args


def run_local(
    run_dir: Path | str,
    arguments: Mapping[str, Any] | None = None,
    *,
    pipeline: str = "onevision-train",
    listener: ProgressListener | None = None,
    cache_dir: Path | str | None = None,
    caching: bool = True,
) -> LocalRunResult:
    """Run `pipeline` with kfp.local's SubprocessRunner; every artifact lands under `run_dir`.

    `cache_dir` (default ``<run_dir>/.kfp-cache``) holds kfp.local's task cache when `caching` is on.
    A failing task does not raise: the result names it (`failed_tasks`, `error`, the task's `error`).
    """
    from kfp import local

    from pipelines.compile import pipelines

    available = pipelines()
    if pipeline not in available:
        raise ValueError(f"unknown pipeline {pipeline!r}; expected one of {sorted(available)}")
    func = available[pipeline]
    run_dir = Path(run_dir).absolute()
    run_dir.mkdir(parents=True, exist_ok=True)
    args = local_arguments(pipeline, run_dir, arguments)
    graph = PipelineGraph.from_spec(func.pipeline_spec)
    before = _pipeline_dirs(run_dir, pipeline)

    cache = Path(cache_dir).absolute() if cache_dir is not None else run_dir / CACHE_DIR
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(run_dir), raise_on_error=True,
               enable_caching=caching, cache_root=str(cache))
    stream = ProgressStream(run_dir / "logs", listener or _NullListener())
    error: str | None = None
    start = time.perf_counter()
    try:
        with _project_on_pythonpath(), contextlib.redirect_stdout(stream), log_to(stream), warnings.catch_warnings():
            for message, category in _EXPECTED_WARNINGS:
                warnings.filterwarnings("ignore", message=message, category=category)
            func(**args)
    except RuntimeError as exc:  # kfp.local: "Pipeline ... finished with status FAILURE. Inner task failed: ..."
        error = _strip_ansi(str(exc))
    finally:
        stream.close()
    seconds = time.perf_counter() - start
    new_dirs = sorted(_pipeline_dirs(run_dir, pipeline) - before)
    result = _collect(pipeline, graph, run_dir, new_dirs[-1] if new_dirs else None, cache, stream, args, error,
                      seconds)
    (run_dir / "summary.json").write_text(json.dumps(result.to_dict(), indent=2, default=str) + "\n")
    _link_latest(run_dir, result.to_dict())
    return result


def _link_latest(run_dir: Path, summary: dict) -> None:
    """Stable names for the latest run's main outputs (symlinks; cached tasks point into earlier runs):
    latest/ (the pipeline directory), world/, parity/, bundles/<kind>/."""
    from onevision.bundle import is_bundle, read_bundle_meta

    links: dict[Path, Path] = {}
    if summary.get("pipeline_dir"):
        links[run_dir / "latest"] = Path(summary["pipeline_dir"])
    for task in (summary.get("tasks") or {}).values():
        for name, path in (task.get("artifacts") or {}).items():
            path = Path(path)
            if name in ("world", "parity"):
                links[run_dir / name] = path
            elif name == "bundle" and is_bundle(path):
                links[run_dir / "bundles" / read_bundle_meta(path).kind] = path
    for link, target in links.items():
        if not target.exists():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink():
            link.unlink()
        if not link.exists():
            link.symlink_to(target, target_is_directory=True)


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)

