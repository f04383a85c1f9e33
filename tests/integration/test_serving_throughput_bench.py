"""bench/serving_throughput.py against a real TorchServe on the tiny bundles: both models at each worker thread
count, one server per count, and the ratio lines."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytestmark = pytest.mark.integration


def test_the_bench_serves_both_models_at_each_thread_count(load_bench, tiny_models, tmp_path: Path) -> None:
    bench = load_bench("serving_throughput")
    out_json = tmp_path / "serving.json"
    result = CliRunner().invoke(bench.app, [
        "--generator", str(tiny_models.generator_bundle), "--cascade", str(tiny_models.cascade_bundle),
        "--world", str(tiny_models.world), "--requests", "4", "--warmup", "1", "--rounds", "2", "--batches", "1,2",
        "--threads", "1,2", "--json", str(out_json)])
    assert result.exit_code == 0, result.output
    records = json.loads(out_json.read_text())
    assert sorted((r["model"], r["threads"], r["batch"]) for r in records) == sorted(
        (m, t, b) for m in ("generator", "cascade") for t in (1, 2) for b in (1, 2))
    assert all(r["requests"] == 4 and len(r["latencies_ms"]) == 4 and r["rps"] > 0 for r in records)
    # TorchServe's own PredictionTime of each measured request, from its log, below the client's latency
    assert all(len(r["worker_ms"]) == 4 and 0 < r["worker_p50_ms"] < r["p50_ms"] for r in records)
    ratios = [line.strip() for line in result.output.splitlines() if "req/s x" in line]
    assert [line.split(":")[0] for line in ratios] == [
        "1 thread, batch 1", "1 thread, batch 2", "2 threads, batch 1", "2 threads, batch 2"]
    assert all("worker p50 x" in line for line in ratios)


def test_prediction_times_reads_each_request_once_per_model(load_bench, tmp_path: Path) -> None:
    log = tmp_path / "ts_log.log"
    line = ("2026-12-07T22:34:17,229 [INFO ] W-9001-{m}_1.0-stdout org.pytorch.serve.wlm.WorkerLifeCycle - "
            "result=[METRICS]PredictionTime.Milliseconds:{v}|#ModelName:{m},Level:Model|#type:GAUGE|#hostname:vm,"
            "1796682857,{rid}\n")
    first = line.format(m="generator", v="2.95", rid="f74c2bd5-1150")
    log.write_text(first * 2 + "2026-12-07T22:34:17,229 [INFO ] unrelated\n"
                   + line.format(m="cascade", v="3.5", rid="aa-1") + line.format(m="generator", v="4", rid="bb-2"))
    times, end = load_bench("serving_throughput").prediction_times(log)
    assert times == {"generator": [2.95, 4.0], "cascade": [3.5]} and end == log.stat().st_size
    later, _ = load_bench("serving_throughput").prediction_times(log, len(first) * 2)
    assert later == {"cascade": [3.5], "generator": [4.0]}


def test_the_bench_names_a_bad_thread_count(load_bench) -> None:
    result = CliRunner().invoke(load_bench("serving_throughput").app, ["--threads", "1,two"])
    assert result.exit_code != 0 and "--threads" in result.output
