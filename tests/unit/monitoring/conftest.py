"""Monitoring fixtures: the scenario world, its replays under no drift, preference drift and camera
degradation (identical pixel arms on both sides), A/B replays of a truly better and a truly worse canary,
and the drift reports of the three drift replays (monitoring_scenarios.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
from monitoring_scenarios import MON_WORLD, Replayed, replay_scenario, report_of

from monitoring.summary import DriftSummary
from onevision.world import DriftConfig, generate_world


@pytest.fixture(scope="session")
def mon_world_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_world(MON_WORLD, tmp_path_factory.mktemp("monitoring_world"))


@pytest.fixture(scope="session")
def replay_no_drift(mon_world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Replayed:
    return replay_scenario(mon_world_dir, tmp_path_factory.mktemp("replay_no_drift"), "same", DriftConfig())


@pytest.fixture(scope="session")
def replay_preference_drift(mon_world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Replayed:
    return replay_scenario(mon_world_dir, tmp_path_factory.mktemp("replay_pref"), "same",
                           DriftConfig(start_day=5, preference_shift=1.0))


@pytest.fixture(scope="session")
def replay_camera_drift(mon_world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Replayed:
    return replay_scenario(mon_world_dir, tmp_path_factory.mktemp("replay_camera"), "same",
                           DriftConfig(start_day=5, camera_degradation=0.8))


@pytest.fixture(scope="session")
def replay_better_canary(mon_world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Replayed:
    return replay_scenario(mon_world_dir, tmp_path_factory.mktemp("replay_better"), "better", DriftConfig())


@pytest.fixture(scope="session")
def replay_worse_canary(mon_world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Replayed:
    return replay_scenario(mon_world_dir, tmp_path_factory.mktemp("replay_worse"), "worse", DriftConfig())


@pytest.fixture(scope="session")
def report_no_drift(replay_no_drift: Replayed, tmp_path_factory: pytest.TempPathFactory) -> tuple[DriftSummary, Path]:
    out = tmp_path_factory.mktemp("report_no_drift")
    return report_of(replay_no_drift, out), out


@pytest.fixture(scope="session")
def report_preference_drift(replay_preference_drift: Replayed,
                            tmp_path_factory: pytest.TempPathFactory) -> tuple[DriftSummary, Path]:
    out = tmp_path_factory.mktemp("report_pref")
    return report_of(replay_preference_drift, out), out


@pytest.fixture(scope="session")
def report_camera_drift(replay_camera_drift: Replayed,
                        tmp_path_factory: pytest.TempPathFactory) -> tuple[DriftSummary, Path]:
    out = tmp_path_factory.mktemp("report_camera")
    return report_of(replay_camera_drift, out), out


@pytest.fixture(scope="session")
def replay_better_with_pre_period(mon_world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Replayed:
    """Day 4 control-only (the pre-period), the better canary on days 5 and 6."""
    return replay_scenario(mon_world_dir, tmp_path_factory.mktemp("replay_pre"), "better", DriftConfig(),
                           days=(4, 5, 6), canary_start_day=5)
