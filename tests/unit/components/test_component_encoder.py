from __future__ import annotations

import math
from pathlib import Path

from component_artifacts import artifact, metrics
from kfp import dsl

from components.encoder import train_encoder
from onevision.steps import tiny_configs
from onevision.vision.encoder import ImageEncoder
from onevision.vision.features import CatalogueFeatures


def test_the_encoder_is_trained_with_the_config_over_the_preset(world: dsl.Dataset, tmp_path: Path) -> None:
    encoder, scalars = artifact(dsl.Model, tmp_path / "encoder"), metrics(tmp_path / "metrics")
    train_encoder.python_func(world, encoder, scalars, preset="tiny", config={"train": {"epochs": 1}, "model": {"embed_dim": 16}})
    model = ImageEncoder.load(tmp_path / "encoder")
    assert model.config.embed_dim == 16 and model.config.widths == tiny_configs().encoder.model.widths
    assert CatalogueFeatures.load(tmp_path / "encoder").item_emb.shape[1] == 16
    assert scalars.metadata["epochs"] == 1.0 and math.isfinite(scalars.metadata["final_loss"])
    assert encoder.metadata == scalars.metadata
