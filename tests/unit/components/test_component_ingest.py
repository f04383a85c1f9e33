from __future__ import annotations

from pathlib import Path

from component_artifacts import artifact
from kfp import dsl

from components.ingest import ingest_world


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_ingest_generates_the_preset_world_from_the_seed(tiny_world_dir: Path, tmp_path: Path) -> None:
    world = artifact(dsl.Dataset, tmp_path / "world")
    ingest_world.python_func(world, preset="tiny", seed=7)  # tests/conftest.py's tiny world is the tiny preset, seed 7
    assert _files(tmp_path / "world") == _files(tiny_world_dir)
    assert world.metadata["source"] == "generated"


def test_ingest_takes_config_fields_over_the_preset(tmp_path: Path) -> None:
    import pandas as pd

    world = artifact(dsl.Dataset, tmp_path / "world")
    ingest_world.python_func(world, preset="tiny", seed=1, config={"items": 40, "users": 10})
    assert len(pd.read_parquet(tmp_path / "world" / "items.parquet")) == 40
    assert len(pd.read_parquet(tmp_path / "world" / "users.parquet")) == 10


def test_ingest_copies_the_world_under_a_data_uri(tiny_world_dir: Path, tmp_path: Path) -> None:
    world = artifact(dsl.Dataset, tmp_path / "world")
    ingest_world.python_func(world, data_uri=str(tiny_world_dir))
    assert _files(tmp_path / "world") == _files(tiny_world_dir)
    assert world.metadata == {"source": str(tiny_world_dir)}
