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
    <run_dir>/model-store/                               the local deploy's storage_uri (train pipeline)
    <run_dir>/summary.json
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.graph import PipelineGraph
from pipelines.progress import ProgressListener, ProgressStream

EXECUTOR_OUTPUT = "executor_output.json"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOCAL_TRAIN_DEFAULTS = {"deploy_target": "local"}  # storage_uri defaults to <run_dir>/model-store


class MissingArtifactError(FileNotFoundError):
    """A run has no artifact under the task/output named in the message."""


@dataclass(frozen=True)
class TaskResult:
    name: str  # task key, e.g. "train-generator-2"
    display_name: str  # e.g. "generator stage 2"
    status: str  # "succeeded" | "failed" | "skipped" | "not run"
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
            raise MissingArtifactError(
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
                         "parameters": t.parameters, "error": t.error, "skip_reason": t.skip_reason}
                for t in self.tasks.values()
            },
        }


class _NullListener:
    def task_started(self, task: str) -> None: ...
    def task_finished(self, task: str, succeeded: bool, seconds: float, error: str | None) -> None: ...
    def task_skipped(self, task: str, reason: str) -> None: ...


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


def _task_result(node_name: str, display: str, task_dir: Path | None, stream: ProgressStream,
                 skipped: Mapping[str, str]) -> TaskResult:
    timing = stream.timings.get(node_name)
    seconds = timing.seconds if timing else None
    if task_dir is None or not task_dir.is_dir():
        status = "skipped" if node_name in skipped else "not run"
        return TaskResult(node_name, display, status, seconds, skip_reason=skipped.get(node_name))
    artifacts = {p.name: p for p in sorted(task_dir.iterdir()) if p.name != EXECUTOR_OUTPUT}
    output_file = task_dir / EXECUTOR_OUTPUT
    failed = (timing is not None and timing.succeeded is False) or not output_file.exists()
    metadata: dict[str, dict] = {}
    parameters: dict[str, Any] = {}
    if output_file.exists():
        written = json.loads(output_file.read_text())
        parameters = dict(written.get("parameterValues", {}))
        for name, group in written.get("artifacts", {}).items():
            for artifact in group.get("artifacts", []):
                metadata[name] = dict(artifact.get("metadata", {}))
                if artifact.get("uri"):
                    artifacts[name] = Path(artifact["uri"])
    return TaskResult(node_name, display, "failed" if failed else "succeeded", seconds, artifacts, metadata,
                      parameters, timing.error if timing and failed else None)


def _collect(pipeline: str, graph: PipelineGraph, run_dir: Path, pipeline_dir: Path | None,
             stream: ProgressStream, arguments: dict[str, Any], error: str | None, seconds: float) -> LocalRunResult:
    skipped = dict(stream.skipped)
    for dag_task, reason in stream.skipped.items():
        for leaf in graph.leaves_under(dag_task):
            skipped.setdefault(leaf, reason)
    tasks = {
        node.name: _task_result(node.name, node.display_name, pipeline_dir / node.name if pipeline_dir else None,
                                stream, skipped)
        for node in graph.leaves()
    }
    return LocalRunResult(pipeline, run_dir, pipeline_dir, arguments, tasks, error, seconds)


def local_arguments(pipeline: str, run_dir: Path, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
    """The train pipeline deploys locally by default: manifest + model store under the run directory."""
    args = dict(arguments or {})
    if pipeline == "onevision-train":
        for key, value in LOCAL_TRAIN_DEFAULTS.items():
            args.setdefault(key, value)
        args.setdefault("storage_uri", str(run_dir / "model-store"))
    return args


def run_local(
    run_dir: Path | str,
    arguments: Mapping[str, Any] | None = None,
    *,
    pipeline: str = "onevision-train",
    listener: ProgressListener | None = None,
) -> LocalRunResult:
    """Run `pipeline` with kfp.local's SubprocessRunner; every artifact lands under `run_dir`.

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

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(run_dir), raise_on_error=True)
    stream = ProgressStream(run_dir / "logs", listener or _NullListener())
    error: str | None = None
    start = time.perf_counter()
    try:
        with _project_on_pythonpath(), contextlib.redirect_stdout(stream), warnings.catch_warnings():
            # Our image is not a "python" image by name; the runner warns about that on every task.
            warnings.filterwarnings("ignore", message=".*non-Python base image.*", category=RuntimeWarning)
            func(**args)
    except RuntimeError as exc:  # kfp.local: "Pipeline ... finished with status FAILURE. Inner task failed: ..."
        error = str(exc).replace("\x1b", "").replace("[0m", "")
        error = _strip_ansi(str(exc))
    finally:
        stream.close()
    seconds = time.perf_counter() - start
    new_dirs = sorted(_pipeline_dirs(run_dir, pipeline) - before)
    result = _collect(pipeline, graph, run_dir, new_dirs[-1] if new_dirs else None, stream, args, error, seconds)
    (run_dir / "summary.json").write_text(json.dumps(result.to_dict(), indent=2, default=str) + "\n")
    return result


def _strip_ansi(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def current_interpreter_is_set_up() -> str | None:
    """None when task subprocesses (this interpreter) can import the pipeline code; else what is missing."""
    import importlib.util

    missing = [m for m in ("kfp", "onevision", "components") if importlib.util.find_spec(m) is None]
    if missing:
        return f"{sys.executable} cannot import {', '.join(missing)}; run with the project's venv (.venv/bin/python)"
    return None
