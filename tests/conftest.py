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
