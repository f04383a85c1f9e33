from __future__ import annotations

from pathlib import Path

from component_artifacts import artifact, metrics
from kfp import dsl

from components.cascade import train_cascade
from onevision.cascade import Cascade


def test_the_cascade_is_trained_with_the_config_over_the_preset(world: dsl.Dataset, encoder: dsl.Model,
                                                                 tmp_path: Path) -> None:
    cascade, scalars = artifact(dsl.Model, tmp_path / "cascade"), metrics(tmp_path / "metrics")
    train_cascade.python_func(world, encoder, cascade, scalars, preset="tiny",
                              config={"recall_n": 30, "prerank_m": 20, "prerank_epochs": 1, "rank_epochs": 1})
    loaded = Cascade.load(tmp_path / "cascade", encoder.path)
    assert (loaded.config.recall_n, loaded.config.prerank_m, loaded.config.rank_epochs) == (30, 20, 1)
    assert scalars.metadata["seconds"] > 0 and cascade.metadata == scalars.metadata
