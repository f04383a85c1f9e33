from __future__ import annotations

import math
from pathlib import Path

from component_artifacts import artifact, metrics
from kfp import dsl

from components.generator import train_generator
from onevision.generator.model import SidGenerator


def test_stage_one_trains_a_generator_with_the_config_over_the_preset(tiny_models, world: dsl.Dataset,
                                                                        encoder: dsl.Model, tmp_path: Path) -> None:
    generator, scalars = artifact(dsl.Model, tmp_path / "generator"), metrics(tmp_path / "metrics")
    train_generator.python_func(world, encoder, artifact(dsl.Model, tiny_models.vrq), generator, scalars, stage=1,
                                preset="tiny", config={"stage1_epochs": 1, "d_model": 16})
    assert SidGenerator.load(tmp_path / "generator").config.d_model == 16
    assert scalars.metadata["stage"] == 1.0 and math.isfinite(scalars.metadata["final_loss"])
    assert generator.metadata == scalars.metadata


def test_a_later_stage_starts_from_its_init_artifact(tiny_models, world: dsl.Dataset, encoder: dsl.Model,
                                                    tmp_path: Path) -> None:
    generator = artifact(dsl.Model, tmp_path / "generator")
    stage1_artifact = artifact(dsl.Model, tiny_models.generator[1])
    train_generator.python_func(world, encoder, artifact(dsl.Model, tiny_models.vrq), generator,
                                metrics(tmp_path / "metrics"), stage=2, init=stage1_artifact, preset="tiny",
                                config={"stage2_epochs": 1})
    stage1 = SidGenerator.load(tiny_models.generator[1]).config
    stage2 = SidGenerator.load(tmp_path / "generator").config
    assert stage1.user_feature_dim == 0 < stage2.user_feature_dim  # stage 2 grows the user tower onto stage 1
    assert (tmp_path / "generator" / "userfeatures").is_dir() and generator.metadata["stage"] == 2.0
