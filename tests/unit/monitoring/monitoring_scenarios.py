"""Replay scenarios shared by the monitoring tests: a tiny world with enough users for a sticky 50/50
split, and replays of it with identical, better or worse canaries under no drift or a given drift."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from monitoring_toys import pixel_arm, random_arm

from monitoring.replay import ReplayLog, replay_ab
from monitoring.report import run_drift_report
from monitoring.summary import DriftSummary
from onevision.world import DriftConfig, WorldConfig

MON_WORLD = WorldConfig(seed=11, items=64, users=300, days=4, queries_per_day=10, train_days=2, val_days=1, brands=8,
                        image_size=32)
REPLAY_DAYS = (4, 5)  # the two days after the world's last day; drift (when any) starts on day 5
QUERIES_PER_DAY = 600  # about 300 requests per arm and window: PSI's noise floor stays well under 0.2


@dataclass(frozen=True)
class Replayed:
    log: ReplayLog
    log_uri: Path


def replay_scenario(world: Path, out: Path, arms: str, drift: DriftConfig, days: tuple[int, ...] = REPLAY_DAYS,
                    **options) -> Replayed:
    """arms: "same" (two pixel arms), "better" (random control, pixel canary), "worse" (the reverse)."""
    control, canary = {
        "same": lambda: (pixel_arm(world, name="pixel-a"), pixel_arm(world, name="pixel-b")),
        "better": lambda: (random_arm(world), pixel_arm(world)),
        "worse": lambda: (pixel_arm(world), random_arm(world)),
    }[arms]()
    log = replay_ab(world, control, canary, canary_percent=50, days=days, drift=drift, seed=3,
                    queries_per_day=QUERIES_PER_DAY, **options)
    log.save(out / "log")
    return Replayed(log, out / "log")


def report_of(replayed: Replayed, out: Path) -> DriftSummary:
    """One log for both windows: day 4 is the reference, day 5 the current window."""
    return run_drift_report(str(replayed.log_uri), str(replayed.log_uri), str(out), run_id="run1")
