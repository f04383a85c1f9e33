"""Shared fixtures: tiny worlds generated once per test session."""
from __future__ import annotations

from pathlib import Path

import pytest

from onevision.world import WorldConfig, generate_world

TINY = WorldConfig(seed=7, items=64, users=24, days=6, queries_per_day=40, train_days=3, val_days=1, brands=8)


@pytest.fixture(scope="session")
def tiny_world_config() -> WorldConfig:
    return TINY


@pytest.fixture(scope="session")
def tiny_world_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated tiny world. Treat as read-only: copy it before corrupting it."""
    return generate_world(TINY, tmp_path_factory.mktemp("tiny_world"))


@pytest.fixture(scope="session")
def tiny_encoder_dir(tiny_world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A briefly trained encoder on the tiny world, with its catalogue features saved beside it."""
    from onevision.vision.encoder import EncoderConfig
    from onevision.vision.features import compute_features
    from onevision.vision.images import ItemImages
    from onevision.vision.train import EncoderTrainConfig, train_encoder
    from onevision.world import load_world

    world = load_world(tiny_world_dir)
    data = ItemImages.from_world(world)
    family = dict(zip(world.items.item_id.tolist(), world.items.family_id.tolist()))
    encoder, _ = train_encoder(
        data, family, EncoderConfig(widths=(16, 32, 48, 64), embed_dim=64),
        EncoderTrainConfig(epochs=4, items_per_batch=32, seed=0), show_progress=False,
    )
    out = tmp_path_factory.mktemp("tiny_encoder")
    encoder.save(out)
    compute_features(encoder, world).save(out)
    return out
