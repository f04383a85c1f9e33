"""The production path, locally: two arms served by a real TorchServe -> a replay whose HTTP arms log every request
and response as KServe's payload logger does, and post the clicks / orders -> the real event sink -> its Parquet
-> the join -> the GX gate -> `ab compare` and the drift report. No oracle on that path: the numbers must equal
those of the in-process replay of the same bundles on the same seed (which also has the oracle's columns)."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from monitoring.arms import HttpArm, InProcessArm
from monitoring.compare import compare_arms
from monitoring.events.emit import PayloadLogger, post_feedback
from monitoring.events.local import start_sink, stop_sink
from monitoring.replay import ReplayConfig, ReplayLog, run_replay
from monitoring.rules import load_rules
from onevision.cli import app
from serving.processes import TorchServeServer, running_torchserve

pytestmark = pytest.mark.integration

DAYS = (6, 7)  # the two days after the tiny world's last
CONFIG = ReplayConfig(days=DAYS, canary_percent=50, seed=3, queries_per_day=60, batch_size=8)


@pytest.fixture(scope="module")
def served(tiny_archives, tmp_path_factory) -> Iterator[TorchServeServer]:
    with running_torchserve(tiny_archives.ab_store, "kservev2", workdir=tmp_path_factory.mktemp("ts-loop")) as server:
        yield server


@pytest.fixture(scope="module")
def loop(served: TorchServeServer, tiny_bundles, tmp_path_factory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("loop")
    url, sink = start_sink(str(root / "store"), "--flush-seconds", "0.5", log_path=root / "sink.log")
    try:
        arms = {label: HttpArm(served.urls(model)["v2"], "v2", name=model, v2_nested=True,
                               payload_logger=PayloadLogger(url + "/", label))
                for label, model in (("control", "cascade"), ("canary", "generator"))}
        posted: list[int] = []
        run_replay(tiny_bundles.world, arms["control"], arms["canary"], CONFIG,
                   on_feedback=lambda events: posted.append(post_feedback(url, events)))
    finally:
        stop_sink(sink)  # SIGTERM: the sink flushes what it holds
    in_process = run_replay(tiny_bundles.world, InProcessArm(tiny_bundles.cascade), InProcessArm(tiny_bundles.generator),
                            CONFIG)
    result = CliRunner().invoke(app, ["events", "join", "--events", str(root / "store"), "--out", str(root / "joined")])
    assert result.exit_code == 0, result.output
    return {"root": root, "joined": ReplayLog.load(root / "joined"), "in_process": in_process, "posted": sum(posted)}


def test_every_query_reaches_the_log_with_the_outcome_of_the_in_process_replay(loop) -> None:
    joined, in_process = loop["joined"], loop["in_process"]
    mine = joined.requests.set_index("request_id").sort_index()
    theirs = in_process.requests.assign(request_id=in_process.requests["request_id"].astype(str)).set_index("request_id").sort_index()
    assert list(mine.index) == list(theirs.index)
    for column in ("arm", "user_id", "window", "clicks", "orders", "clicked", "ordered", "n_results", "sid_prefix"):
        assert mine[column].tolist() == theirs[column].tolist(), column
    np.testing.assert_allclose(mine["img_brightness"], theirs["img_brightness"], rtol=1e-6)
    assert loop["posted"] == int(theirs["clicks"].sum() + theirs["orders"].sum())
    assert mine["expected_ctr"].isna().all()  # no oracle on the production path


def test_ab_compare_decides_the_same_from_the_sink_as_from_the_replay(loop) -> None:
    rules = load_rules().comparison
    a = compare_arms(loop["joined"].requests, rules, expected_canary_share=0.5)
    b = compare_arms(loop["in_process"].requests, rules, expected_canary_share=0.5)
    for metric in ("ctr", "cvr"):
        assert a.metrics[metric].rel_lift == pytest.approx(b.metrics[metric].rel_lift)
        assert a.metrics[metric].p_value == pytest.approx(b.metrics[metric].p_value)
    assert (a.srm.control_units, a.srm.canary_units) == (b.srm.control_units, b.srm.canary_units)


def test_the_drift_report_runs_on_the_joined_log(loop) -> None:
    root = loop["root"]
    result = CliRunner().invoke(app, ["drift", "report", "--reference", str(root / "joined"), "--current",
                                      str(root / "joined"), "--out", str(root / "drift"),
                                      "--expected-canary-percent", "50"])
    assert result.exit_code == 0, result.output
    summary = json.loads(next((root / "drift").glob("*/summary.json")).read_text())
    skipped = {s["name"] for arm in summary["arms"].values() for s in arm["skipped"]}
    assert "ctr_per_request" in skipped or all(arm["status"] != "tested" for arm in summary["arms"].values())
