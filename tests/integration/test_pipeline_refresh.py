"""The onevision-refresh pipeline run end to end by kfp.local on a tiny world whose new items list after training."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from pipelines.local import run_local

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from onevision import steps
    from onevision.world.config import DriftConfig

    cfg = steps.tiny_configs()
    root = tmp_path_factory.mktemp("refresh-inputs")
    world = root / "world"
    steps.generate_world_step(world, dataclasses.replace(cfg.world, drift=DriftConfig(4, new_item_share=0.15)))
    steps.train_encoder_step(world, root / "encoder", cfg.encoder, show_progress=False)
    steps.train_vrq_step(world, root / "encoder", root / "vrq", cfg.vrq, show_progress=False)
    steps.train_cascade_step(world, root / "encoder", root / "cascade", cfg.cascade, show_progress=False)
    for stage in (1, 2, 3):
        steps.train_generator_step(world, root / "encoder", root / "vrq", root / f"g{stage}", stage,
                                   root / f"g{stage - 1}" if stage > 1 else None, cfg.generator, show_progress=False,
                                   reward_dir=root / "cascade")
    steps.make_bundle_step("generator", root / "gen", encoder_dir=root / "encoder", vrq_dir=root / "vrq",
                           generator_dir=root / "g3", version="gen-1")
    steps.make_bundle_step("cascade", root / "cas", encoder_dir=root / "encoder", cascade_dir=root / "cascade",
                           version="cas-1")
    return {"data_uri": str(world), "generator_bundle_uri": str(root / "gen"), "cascade_bundle_uri": str(root / "cas")}


def test_refresh_runs_end_to_end_and_canaries_when_both_gates_pass(inputs, tmp_path: Path) -> None:
    run = run_local(tmp_path, {**inputs, "preset": "tiny", "new_within": 1.0, "old_tolerance": 1.0, "epsilon": 0.99},
                    pipeline="onevision-refresh")
    assert run.succeeded, run.error
    assert run.task("refresh-gate").parameters == {"passed": True}
    assert run.task("deploy-canary").status == "succeeded"
    manifest = json.loads((run.task("refresh-catalogue").artifacts["refreshed"] / "refresh_manifest.json").read_text())
    assert manifest["parent"]["version"] == "gen-1" and manifest["added"]
