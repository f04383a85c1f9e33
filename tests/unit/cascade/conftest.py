"""A cascade trained once on the tiny world, and a batch of its test photos."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from onevision.cascade import Cascade, CascadeConfig
from onevision.world import World, load_world
from onevision.world.render import decode_image

TINY_CASCADE = CascadeConfig(recall_n=40, prerank_m=20)


@pytest.fixture(scope="session")
def tiny_world(tiny_world_dir: Path) -> World:
    return load_world(tiny_world_dir)


@pytest.fixture(scope="session")
def tiny_cascade_config() -> CascadeConfig:
    return TINY_CASCADE


@pytest.fixture(scope="session")
def tiny_cascade(tiny_world: World, tiny_encoder_dir: Path) -> Cascade:
    return Cascade.fit(tiny_world, tiny_encoder_dir, TINY_CASCADE, show_progress=False)


@pytest.fixture(scope="session")
def test_batch(tiny_world: World) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (24, H, W, 3), user ids (24,)) of the first test queries; the last user is unknown (-1)."""
    q = tiny_world.queries_of("test").iloc[:24]
    users = q["user_id"].to_numpy(np.int64).copy()
    users[-1] = -1
    return np.stack([decode_image(b) for b in q["image"]]), users
