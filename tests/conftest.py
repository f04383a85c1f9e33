"""Shared fixtures: tiny worlds generated once per test session."""
from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from onevision.world import WorldConfig, generate_world

BENCH_DIR = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="session")
def load_bench() -> Callable[[str], ModuleType]:
    """A script of bench/ as a module, by file name without .py (bench/ is not a package)."""
    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH_DIR / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
        return module
    return load


class OpenBlasThreads:
    """The OpenBLAS pools' thread counts now, and a spy recording them inside calls of a patched callable."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch

    @staticmethod
    def now() -> list[int]:
        from threadpoolctl import threadpool_info

        return [p["num_threads"] for p in threadpool_info() if p["internal_api"] == "openblas"]

    def spy(self, owner: object, name: str) -> list[list[int]]:
        """Patch owner.name so that each call first records `now()`; returns the list of records."""
        seen: list[list[int]] = []
        inner = getattr(owner, name)

        def recording(*args, **kwargs):
            seen.append(self.now())
            return inner(*args, **kwargs)

        self.monkeypatch.setattr(owner, name, recording)
        return seen


@pytest.fixture
def openblas_threads(monkeypatch: pytest.MonkeyPatch) -> OpenBlasThreads:
    return OpenBlasThreads(monkeypatch)


TINY = WorldConfig(seed=7, items=64, users=24, days=6, queries_per_day=40, train_days=3, val_days=1, brands=8)
# (the same world as onevision.steps.tiny_configs().world)


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


@dataclass(frozen=True)
class TinyModels:
    world: Path
    encoder: Path
    vrq: Path
    cascade: Path
    generator: dict[int, Path]
    generator_bundle: Path
    cascade_bundle: Path


@pytest.fixture(scope="session")
def tiny_models(tiny_world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    """Every model trained on the tiny world with the tiny presets (a few seconds), plus both bundles."""
    from onevision import steps

    cfg = steps.tiny_configs()
    root = tmp_path_factory.mktemp("tiny_models")
    steps.train_encoder_step(tiny_world_dir, root / "encoder", cfg.encoder, show_progress=False)
    steps.train_vrq_step(tiny_world_dir, root / "encoder", root / "vrq", cfg.vrq, show_progress=False)
    steps.train_cascade_step(tiny_world_dir, root / "encoder", root / "cascade", cfg.cascade)
    gens: dict[int, Path] = {}
    for stage in (1, 2, 3):
        steps.train_generator_step(tiny_world_dir, root / "encoder", root / "vrq", root / f"generator{stage}", stage,
                                   gens.get(stage - 1), cfg.generator, show_progress=False, reward_dir=root / "cascade")
        gens[stage] = root / f"generator{stage}"
    gen_bundle = steps.make_bundle_step("generator", root / "bundle_generator", encoder_dir=root / "encoder",
                                        vrq_dir=root / "vrq", generator_dir=gens[3], version="tiny-gen")
    cas_bundle = steps.make_bundle_step("cascade", root / "bundle_cascade", encoder_dir=root / "encoder",
                                        cascade_dir=root / "cascade", version="tiny-cas")
    return TinyModels(tiny_world_dir, root / "encoder", root / "vrq", root / "cascade", gens, gen_bundle, cas_bundle)
