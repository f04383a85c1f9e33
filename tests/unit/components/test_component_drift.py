from __future__ import annotations

from pathlib import Path

import pytest
from component_artifacts import artifact, metrics
from kfp import dsl

from components.drift import drift_report
from monitoring.arms import arm_from_spec
from monitoring.replay import replay_ab
from onevision.world import DriftConfig


@pytest.fixture(scope="module")
def camera_drift_log(tiny_world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Two replayed days after the tiny world (one window each); the camera degrades on the second."""
    control, canary = arm_from_spec("random:1", tiny_world_dir), arm_from_spec("popularity", tiny_world_dir)
    log = replay_ab(tiny_world_dir, control, canary, canary_percent=50, days=(6, 7), seed=3, queries_per_day=700,
                    drift=DriftConfig(start_day=7, camera_degradation=0.8))
    return log.save(tmp_path_factory.mktemp("camera_drift") / "log")


def test_drift_of_the_current_window_is_reported_and_published(camera_drift_log: str, tmp_path: Path) -> None:
    report, page = artifact(dsl.Artifact, tmp_path / "report"), artifact(dsl.HTML, tmp_path / "report.html")
    scalars = metrics(tmp_path / "metrics")
    outputs = drift_report.python_func(camera_drift_log, camera_drift_log, report, page, scalars,
                                       report_uri=str(tmp_path / "store"))
    run_id = report.metadata["run_id"]
    assert outputs.drift_detected is True and scalars.metadata["drift_detected"] == 1.0
    assert outputs.recommendation == report.metadata["recommendation"] in ("promote", "hold", "rollback")
    assert (tmp_path / "store" / run_id / "index.html").is_file()  # the persistent store
    assert (tmp_path / "report" / run_id / "index.html").read_text() == (tmp_path / "report.html").read_text()
    assert (tmp_path / "report.html").read_text().lstrip().lower().startswith("<!doctype html")
