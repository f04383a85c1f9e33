"""Reliability of a real TorchServe serving both tiny archives: bounded concurrent load with zero errors and
stable worker memory, and a killed worker that TorchServe restarts at the cost of at most a few requests."""
from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from onevision.service.client import v2_predictions, v2_request
from serving.processes import TorchServeServer, http, post_json, running_torchserve

pytestmark = pytest.mark.integration

CLIENTS = 8
REQUESTS_PER_CLIENT = 12
MODELS = ("generator", "cascade")


@pytest.fixture(scope="module")
def server(tiny_archives, tmp_path_factory) -> Iterator[TorchServeServer]:
    with running_torchserve(tiny_archives.ab_store, "kservev2", workdir=tmp_path_factory.mktemp("ts-load")) as server:
        yield server


def worker_pids(server: TorchServeServer, model: str) -> list[int]:
    described = http("GET", f"{server.management_url}/models/{model}").json()
    return [int(w["pid"]) for w in described[0]["workers"] if w.get("pid")]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def test_concurrent_clients_get_no_errors_and_worker_memory_stays_flat(server, serving_probe):
    bodies = [v2_request([photo], [user], top_k=5) for photo, user in zip(serving_probe.photos, serving_probe.users)]
    warm = [post_json(server.urls(m)["v2"], bodies[0]).status for m in MODELS]
    assert warm == [200, 200]
    before = {m: [rss_kib(p) for p in worker_pids(server, m)] for m in MODELS}

    def client(index: int) -> list[int]:
        statuses = []
        for r in range(REQUESTS_PER_CLIENT):
            model = MODELS[(index + r) % 2]
            response = post_json(server.urls(model)["v2"], bodies[(index + r) % len(bodies)], timeout=120)
            if response.status == 200:
                v2_predictions(response.json())  # every answer is a well-formed typed response
            statuses.append(response.status)
        return statuses

    start = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = [s for per_client in pool.map(client, range(CLIENTS)) for s in per_client]
    seconds = time.perf_counter() - start
    errors = sum(s != 200 for s in statuses)
    print(f"\n{len(statuses)} requests from {CLIENTS} clients in {seconds:.1f} s "
          f"({len(statuses) / seconds:.1f} req/s), {errors} errors")
    assert errors == 0, sorted(set(statuses))
    after = {m: [rss_kib(p) for p in worker_pids(server, m)] for m in MODELS}
    for model in MODELS:
        for b, a in zip(before[model], after[model]):
            assert a < b * 1.25 + 50_000, f"{model} worker RSS grew from {b} to {a} KiB under load"


def test_a_killed_worker_is_restarted_and_costs_at_most_a_few_requests(server, serving_probe):
    body = v2_request(serving_probe.photos[:1], serving_probe.users[:1], top_k=5)
    url = server.urls("generator")["v2"]
    assert post_json(url, body).status == 200
    (pid,) = worker_pids(server, "generator")
    os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()
    failures, restored = 0, None
    while time.monotonic() - killed_at < 180:
        if post_json(url, body, timeout=60).status == 200:
            restored = time.monotonic() - killed_at
            break
        failures += 1
        time.sleep(0.2)
    print(f"\nworker {pid} killed: answering again after {restored} s, {failures} failed requests")
    assert restored is not None, "TorchServe did not bring the generator back within 180 s"
    assert failures <= 5
    assert worker_pids(server, "generator") != [pid]
    assert post_json(server.urls("cascade")["v2"], body).status == 200  # the other model never noticed
