"""Compile the pipelines to KFP IR YAML (the files committed under pipelines/compiled/)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipelines.graph import PipelineGraph

COMPILED_DIR = Path(__file__).with_name("compiled")


def pipelines() -> dict[str, Callable]:
    """Pipeline name -> pipeline function."""
    from pipelines.drift import PIPELINE_NAME as DRIFT, onevision_drift
    from pipelines.refresh import PIPELINE_NAME as REFRESH, onevision_refresh
    from pipelines.train import PIPELINE_NAME as TRAIN, onevision_train

    return {TRAIN: onevision_train, DRIFT: onevision_drift, REFRESH: onevision_refresh}


def compiled_path(name: str, out_dir: Path = COMPILED_DIR) -> Path:
    return Path(out_dir) / f"{name}.yaml"


def compile_pipeline(name: str, out_dir: Path = COMPILED_DIR) -> Path:
    from kfp import compiler

    available = pipelines()
    if name not in available:
        raise ValueError(f"unknown pipeline {name!r}; expected one of {sorted(available)}")
    path = compiled_path(name, out_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(available[name], str(path))
    return path


def compile_all(out_dir: Path = COMPILED_DIR) -> list[Path]:
    return [compile_pipeline(name, out_dir) for name in pipelines()]


def pipeline_graph(name: str) -> PipelineGraph:
    """The task graph of pipeline `name` (task keys, display names, condition nesting)."""
    from pipelines.graph import PipelineGraph

    available = pipelines()
    if name not in available:
        raise ValueError(f"unknown pipeline {name!r}; expected one of {sorted(available)}")
    return PipelineGraph.from_spec(available[name].pipeline_spec)
