"""The onevision-train pipeline run end to end by kfp.local (SubprocessRunner) on tiny worlds.

The runs share one kfp.local cache: the forced gate failure reuses the training steps of the passing run
(only the parity gate and what follows it run again), which keeps this module to a few minutes.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipelines.local import LocalRunResult, MissingRunOutputError, run_local

pytestmark = pytest.mark.integration

TINY = {"preset": "tiny", "world_seed": 7}
TRAINING = ["ingest-world", "train-encoder", "train-vrq", "train-cascade", "train-generator", "train-generator-2",
            "train-generator-3", "package-bundle", "package-bundle-2", "evaluate-model", "evaluate-model-2"]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("kfp-cache")


@pytest.fixture(scope="module")
def passed(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> LocalRunResult:
    """epsilon 0.99: the generator only has to reach 1% of the cascade's metrics."""
    return run_local(tmp_path_factory.mktemp("run-passed"), {**TINY, "epsilon": 0.99}, cache_dir=cache_dir)


def test_tiny_world_runs_end_to_end(passed: LocalRunResult) -> None:
    assert passed.succeeded, passed.error
    assert {t.name: t.status for t in passed.tasks.values() if t.status != "succeeded"} == {
        "gate-failure-report": "skipped"}
    assert passed.task("parity-gate").parameters == {"passed": True}


@pytest.mark.parametrize(("task", "output", "inside"), [
    ("ingest-world", "world", "items.parquet"),
    ("validate-data", "report", "validation_result.json"),
    ("validate-data", "summary", None),
    ("train-encoder", "encoder", "encoder.pt"),
    ("train-vrq", "vrq", "vrq_report.json"),
    ("train-vrq", "report", None),
    ("train-cascade", "cascade", None),
    ("train-generator-3", "generator", "checkpoint.pt"),
    ("package-bundle", "bundle", "bundle.json"),
    ("package-bundle-2", "bundle", "bundle.json"),
    ("evaluate-model", "evaluation", "metrics.json"),
    ("evaluate-model-2", "evaluation", "metrics.json"),
    ("parity-gate", "parity", "parity.json"),
    ("parity-gate", "report_html", None),
    ("build-archive", "model_store", "model-store/onevision.mar"),
    ("build-archive", "model_store", "config/config.properties"),
    ("deploy-canary", "deployment", None),
])
def test_every_artifact_is_written_under_the_run_directory(passed: LocalRunResult, task: str, output: str,
                                                          inside: str | None) -> None:
    path = passed.artifact(task, output)
    assert path.is_relative_to(passed.run_dir)
    assert (path / inside).is_file() if inside else path.exists()


def test_local_deploy_writes_the_manifest_and_the_model_store(passed: LocalRunResult) -> None:
    store = passed.run_dir / "model-store"
    assert [p.name for p in store.glob("*/model-store/onevision.mar")] == ["onevision.mar"]
    version_uri = next(store.iterdir()).as_uri()
    manifests = [d for f in passed.artifact("deploy-canary", "deployment").rglob("*.yaml")
                 for d in yaml.safe_load_all(f.read_text()) if d]
    assert any(version_uri in yaml.safe_dump(m) for m in manifests), manifests


def test_latest_outputs_have_stable_names(passed: LocalRunResult) -> None:
    import json

    run = passed.run_dir
    assert (run / "world" / "items.parquet").exists()
    assert json.loads((run / "bundles" / "generator" / "bundle.json").read_text())["kind"] == "generator"
    assert json.loads((run / "bundles" / "cascade" / "bundle.json").read_text())["kind"] == "cascade"
    assert (run / "latest").resolve().name.startswith("onevision-train")


def test_local_run_ends_with_a_summary_file(passed: LocalRunResult) -> None:
    summary = yaml.safe_load((passed.run_dir / "summary.json").read_text())
    assert summary["succeeded"] is True
    assert summary["tasks"]["deploy-canary"]["status"] == "succeeded"


@pytest.fixture(scope="module")
def gate_failed(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path, passed: LocalRunResult) -> LocalRunResult:
    """epsilon < 0: the generator must beat the cascade by 50%. Runs after `passed`, so its cache is full."""
    return run_local(tmp_path_factory.mktemp("run-gate-failed"), {**TINY, "epsilon": -0.5}, cache_dir=cache_dir)


def test_forced_gate_failure_skips_archive_and_deploy(gate_failed: LocalRunResult) -> None:
    run = gate_failed
    assert run.succeeded, run.error
    assert run.task("parity-gate").parameters == {"passed": False}
    assert [run.task(t).status for t in ("build-archive", "deploy-canary")] == ["skipped", "skipped"]
    assert not (run.run_dir / "model-store").exists()
    reasons = run.artifact("gate-failure-report", "reasons").read_text()
    assert reasons.startswith("# Parity gate FAILED — not archived, not deployed")
    assert "recall@10: generator" in reasons
    with pytest.raises(MissingRunOutputError, match="no artifact 'model_store' of task 'build-archive'"):
        run.artifact("build-archive", "model_store")


def test_unchanged_training_steps_come_from_the_cache(gate_failed: LocalRunResult) -> None:
    assert {t: gate_failed.task(t).status for t in TRAINING} == {t: "cached" for t in TRAINING}
    assert gate_failed.task("validate-data").status == "succeeded"  # never cached


def test_corrupted_world_stops_at_validation_naming_the_failed_expectation(tmp_path: Path,
                                                                          tiny_world_dir: Path) -> None:
    world = shutil.copytree(tiny_world_dir, tmp_path / "world")
    items = pd.read_parquet(world / "items.parquet")
    items.loc[1, "item_id"] = items.loc[0, "item_id"]  # a duplicate primary key
    items.to_parquet(world / "items.parquet", index=False)

    run = run_local(tmp_path / "run", {**TINY, "data_uri": str(world)}, caching=False)
    assert not run.succeeded
    assert run.failed_tasks == ["validate-data"]
    assert "items.item_id: expect_column_values_to_be_unique" in run.task("validate-data").error
    assert {run.task(t).status for t in TRAINING if t != "ingest-world"} == {"skipped"}
    summary = run.artifact("validate-data", "summary").read_text()
    assert "items.item_id: expect_column_values_to_be_unique" in summary


def _request_log(out: Path, brightness_shift: float, rows: int = 300, seed: int = 0) -> Path:
    """A served-request log (monitoring.replay schema): windows 0 and 1, both arms; window 1 brighter photos."""
    from monitoring.replay import IMPRESSION_COLUMNS, ReplayLog

    rng = np.random.default_rng(seed)
    frames = []
    for window in (0, 1):
        for arm in ("control", "canary"):
            clicked = rng.random(rows) < 0.3
            ordered = clicked & (rng.random(rows) < 0.3)
            frames.append(pd.DataFrame({
                "request_id": np.arange(rows) + len(frames) * rows, "arm": arm, "model": arm, "window": window,
                "day": window, "ts": window * 86400.0 + np.arange(rows), "user_id": rng.integers(0, 50, rows),
                "target_item_id": rng.integers(0, 64, rows), "n_results": 10, "latency_ms": rng.gamma(2, 5, rows),
                "img_brightness": rng.normal(0.5 + brightness_shift * window, 0.1, rows),
                "img_contrast": rng.normal(0.2, 0.05, rows), "img_saturation": rng.normal(0.3, 0.05, rows),
                "img_sharpness": rng.normal(0.1, 0.02, rows), "emb_pc1": rng.normal(0, 1, rows),
                "emb_pc2": rng.normal(0, 1, rows), "sid_prefix": rng.integers(0, 8, rows),
                "diversity": rng.integers(1, 8, rows), "target_in_slate": rng.random(rows) < 0.5,
                "expected_ctr": rng.random(rows) * 0.5, "expected_cvr": rng.random(rows) * 0.2,
                "expected_orders": rng.random(rows) * 0.1, "clicks": clicked.astype(int),
                "orders": ordered.astype(int), "clicked": clicked, "ordered": ordered,
            }))
    ReplayLog(pd.concat(frames, ignore_index=True), pd.DataFrame(columns=list(IMPRESSION_COLUMNS))).save(out)
    return out


def test_drift_pipeline_reports_drift_of_a_shifted_window(tmp_path: Path) -> None:
    log = _request_log(tmp_path / "requests", brightness_shift=0.3)
    run = run_local(tmp_path / "run", {"reference_uri": str(log), "current_uri": str(log), "report_uri": ""},
                    pipeline="onevision-drift", caching=False)
    assert run.succeeded, run.error
    task = run.task("drift-report")
    assert task.parameters["drift_detected"] is True
    assert task.metadata["metrics"]["drift_detected"] == 1.0
    assert run.artifact("drift-report", "report_html").read_text().lstrip().lower().startswith("<!doctype html")


def test_drift_pipeline_reads_the_event_sink_when_it_is_given(tmp_path: Path) -> None:
    """The `from-the-event-sink` branch: join-events (GX-gated) feeds the drift report."""
    from onevision.service.client import v2_request
    from tests.unit.monitoring.test_event_join import exchange, image, write

    rng = np.random.default_rng(0)
    for n in range(240):
        arm = "canary" if n % 2 else "control"
        request, response = exchange(f"q{n}", arm, "v4" if n % 2 else "v3", n * 12,
                                     v2_request([image(n)], [int(rng.integers(0, 50))], 2), [[n % 7, 7 + n % 5]])
        part = f"arm={arm}/model_version=x/hour=2026120109"
        write(tmp_path / "sink", "requests", [request], part, f"part-{n}.parquet")
        write(tmp_path / "sink", "responses", [response], part, f"part-{n}.parquet")
    run = run_local(tmp_path / "run", {"events_uri": str(tmp_path / "sink"), "report_uri": "",
                                       "expected_canary_percent": 50.0}, pipeline="onevision-drift", caching=False)
    assert run.succeeded, run.error
    assert run.task("join-events").metadata["metrics"]["canary.requests"] == 120.0
    assert run.task("drift-report-2").parameters["recommendation"] in ("promote", "hold", "rollback")
