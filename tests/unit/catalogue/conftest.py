"""A tiny world whose new items are listed on the first test day, and both bundles trained on it."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pytest

from onevision.world import WorldConfig, generate_world
from onevision.world.config import DriftConfig

NEW_ITEMS_WORLD = dataclasses.replace(
    WorldConfig(seed=7, items=64, users=24, days=6, queries_per_day=40, train_days=3, val_days=1, brands=8),
    drift=DriftConfig(start_day=4, new_item_share=0.15))  # the tiny world of tests/conftest.py, with new items


@dataclass(frozen=True)
class NewItemModels:
    world: Path
    encoder: Path
    vrq: Path
    generator_bundle: Path
    cascade_bundle: Path


@pytest.fixture(scope="session")
def new_items_world_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_world(NEW_ITEMS_WORLD, tmp_path_factory.mktemp("new_items_world"))


@pytest.fixture(scope="session")
def new_item_models(new_items_world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> NewItemModels:
    """The tiny presets' models (about 30 s on 2 cores) and both bundles, trained on the catalogue as listed by the
    last training day."""
    from onevision import steps

    cfg = steps.tiny_configs()
    w, root = new_items_world_dir, tmp_path_factory.mktemp("new_item_models")
    steps.train_encoder_step(w, root / "encoder", cfg.encoder, show_progress=False)
    steps.train_vrq_step(w, root / "encoder", root / "vrq", cfg.vrq, show_progress=False)
    steps.train_cascade_step(w, root / "encoder", root / "cascade", cfg.cascade, show_progress=False)
    for stage in (1, 2, 3):
        steps.train_generator_step(w, root / "encoder", root / "vrq", root / f"generator{stage}", stage,
                                   root / f"generator{stage - 1}" if stage > 1 else None, cfg.generator,
                                   show_progress=False, reward_dir=root / "cascade")
    gen = steps.make_bundle_step("generator", root / "bundle_generator", encoder_dir=root / "encoder",
                                 vrq_dir=root / "vrq", generator_dir=root / "generator3", version="tiny-gen")
    cas = steps.make_bundle_step("cascade", root / "bundle_cascade", encoder_dir=root / "encoder",
                                 cascade_dir=root / "cascade", version="tiny-cas")
    return NewItemModels(w, root / "encoder", root / "vrq", gen, cas)
