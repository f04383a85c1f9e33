"""Serving throughput of the generator vs the cascade behind one real TorchServe on 127.0.0.1.

Both bundles are archived (serving.archive) and served side by side by one TorchServe with the KServe v2
envelope (what the InferenceService runs); the client sends the same test-split photos to both, at batch
sizes 1 and 8, alternating the two models in short rounds so that machine noise hits both alike. Prints
requests/s, images/s, p50/p95 latency per (model, batch), the median of TorchServe's own `PredictionTime` (the
handler's call inside the worker, read from TorchServe's log: the rest of a request's time is the frontend, the
worker's IPC and the client) and the generator/cascade ratios; with `--threads 1,2`
once per torch thread count of the workers (``ONEVISION_TORCH_THREADS``, a fresh server each), else at the count
the workers choose themselves (serving/threads.py).

    python bench/serving_throughput.py                         # trains tiny bundles first (~1-2 min)
    python bench/serving_throughput.py --generator runs/local/bundle_generator --cascade runs/local/bundle_cascade \
        --world runs/local/world --requests 200
"""
from __future__ import annotations

import json
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import typer

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
MODELS = ("generator", "cascade")


@dataclass
class Measurement:
    model: str
    batch: int
    requests: int
    seconds: float
    latencies_ms: list[float]
    threads: Optional[int] = None  # the workers' torch threads (None: their own choice)
    worker_ms: Optional[list[float]] = None  # TorchServe's PredictionTime of the measured requests

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def images_per_s(self) -> float:
        return self.rps * self.batch

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q))

    def worker_p50(self) -> Optional[float]:
        return float(np.median(self.worker_ms)) if self.worker_ms else None

    def summary(self) -> dict:
        return {"model": self.model, "threads": self.threads, "batch": self.batch, "requests": self.requests,
                "rps": round(self.rps, 2),
                "images_per_s": round(self.images_per_s, 2), "p50_ms": round(self.pct(50), 2),
                "p95_ms": round(self.pct(95), 2),
                "worker_p50_ms": None if self.worker_p50() is None else round(self.worker_p50(), 2)}


def tiny_bundles(root: Path) -> tuple[Path, Path, Path]:
    """Train the TINY preset chain (what the tests use) into `root`; returns (generator, cascade, world)."""
    from onevision import steps

    cfg = steps.tiny_configs()
    world, encoder, vrq = root / "world", root / "encoder", root / "vrq"
    steps.generate_world_step(world, cfg.world)
    steps.train_encoder_step(world, encoder, cfg.encoder, show_progress=False)
    steps.train_vrq_step(world, encoder, vrq, cfg.vrq, show_progress=False)
    steps.train_cascade_step(world, encoder, root / "cascade", cfg.cascade)
    steps.train_generator_step(world, encoder, vrq, root / "gen1", 1, None, cfg.generator, show_progress=False)
    steps.train_generator_step(world, encoder, vrq, root / "gen2", 2, root / "gen1", cfg.generator, show_progress=False)
    gen = steps.make_bundle_step("generator", root / "bundle_generator", encoder_dir=encoder, vrq_dir=vrq,
                                 generator_dir=root / "gen2")
    cas = steps.make_bundle_step("cascade", root / "bundle_cascade", encoder_dir=encoder, cascade_dir=root / "cascade")
    return Path(gen), Path(cas), world


def query_photos(world_dir: Path, n: int) -> tuple[list[bytes], list[int]]:
    from onevision.world import load_world

    queries = load_world(world_dir).queries_of("test").sort_values("query_id").head(n)
    return [bytes(b) for b in queries["image"]], [int(u) for u in queries["user_id"]]


def run_round(url: str, bodies: list[bytes], measurement: Measurement) -> None:
    from serving.processes import http

    start = time.perf_counter()
    for body in bodies:
        t0 = time.perf_counter()
        response = http("POST", url, body, timeout=120)
        measurement.latencies_ms.append((time.perf_counter() - t0) * 1000)
        if response.status != 200:
            raise RuntimeError(f"{url} answered HTTP {response.status}: {response.body[:300]!r}")
    measurement.seconds += time.perf_counter() - start
    measurement.requests += len(bodies)


# TorchServe logs each request's PredictionTime metric from the worker's stdout (ts_log.log, in LOG_LOCATION), e.g.
# "... result=[METRICS]PredictionTime.Milliseconds:2.95|#ModelName:generator,Level:Model|#type:GAUGE|#hostname:vm,
# 1796682857,f74c2bd5-...": the value, the model and the request id (a line may be logged twice).
TS_LOG = Path("logs") / "ts_log.log"
PREDICTION_TIME = re.compile(
    r"\[METRICS\]PredictionTime\.Milliseconds:([\d.]+)\|#ModelName:([^,|]+)[,|].*#hostname:[^,]*,\d+,([\w-]+)")


def prediction_times(log: Path, start: int = 0) -> tuple[dict[str, list[float]], int]:
    """TorchServe's PredictionTime (ms) per model from byte `start` of its log, once per request; and the log's end."""
    if not log.exists():
        return {}, start
    with log.open("rb") as f:
        f.seek(start)
        text = f.read()
    times: dict[str, list[float]] = {}
    seen: set[str] = set()
    for line in text.decode(errors="replace").splitlines():
        m = PREDICTION_TIME.search(line)
        if m and m.group(3) not in seen:
            seen.add(m.group(3))
            times.setdefault(m.group(2), []).append(float(m.group(1)))
    return times, start + len(text)


def request_bodies(photos: list[bytes], users: list[int], batch: int, count: int, top_k: int) -> list[bytes]:
    from onevision.service.client import v2_request

    bodies = []
    for r in range(count):
        idx = [(r * batch + j) % len(photos) for j in range(batch)]
        body = v2_request([photos[i] for i in idx], [users[i] for i in idx], top_k=top_k, nested=batch > 1)
        bodies.append(json.dumps(body).encode())
    return bodies


def print_table(results: list[Measurement]) -> None:
    by = {(m.model, m.threads, m.batch): m for m in results}
    header = (f"{'model':<10} {'threads':>7} {'batch':>5} {'requests':>8} {'req/s':>8} {'img/s':>8} {'p50 ms':>8} "
              f"{'p95 ms':>8} {'worker p50 ms':>13}")
    print(header)
    print("-" * len(header))
    for m in results:
        s = m.summary()
        threads = "auto" if m.threads is None else str(m.threads)
        worker = "—" if s["worker_p50_ms"] is None else f"{s['worker_p50_ms']:.2f}"
        print(f"{s['model']:<10} {threads:>7} {s['batch']:>5} {s['requests']:>8} {s['rps']:>8.1f} "
              f"{s['images_per_s']:>8.1f} {s['p50_ms']:>8.1f} {s['p95_ms']:>8.1f} {worker:>13}")
    print("\ngenerator / cascade (req/s > 1: generator serves more; latency < 1: generator is faster)")
    for threads, batch in dict.fromkeys((m.threads, m.batch) for m in results):
        g, c = by[("generator", threads, batch)], by[("cascade", threads, batch)]
        label = "" if threads is None else f"{threads} thread{'s' * (threads > 1)}, "
        worker = "" if g.worker_p50() is None or c.worker_p50() is None else \
            f"   worker p50 x{g.worker_p50() / c.worker_p50():.2f}"
        print(f"  {label}batch {batch}: req/s x{g.rps / c.rps:.2f}   p50 x{g.pct(50) / c.pct(50):.2f}   "
              f"p95 x{g.pct(95) / c.pct(95):.2f}{worker}")


def measure(server, plan: dict[str, list[bytes]], batch: int, threads: Optional[int], warmup: int, requests: int,
            rounds: int) -> list[Measurement]:
    """Warm both models up, then alternate them in `rounds` rounds (the order flips every round)."""
    measures = {m: Measurement(m, batch, 0, 0.0, [], threads) for m in MODELS}
    for m in MODELS:  # warm up both before measuring either
        run_round(server.urls(m)["v2"], plan[m][:warmup], Measurement(m, batch, 0, 0.0, []))
    log = server.server.workdir / TS_LOG
    time.sleep(0.5)  # the frontend logs the warm-up's last metrics asynchronously
    start = log.stat().st_size if log.exists() else 0  # measured requests' metrics come after this byte
    per_round = -(-requests // rounds)
    for r in range(rounds):
        for m in MODELS if r % 2 == 0 else MODELS[::-1]:
            chunk = plan[m][warmup + r * per_round: warmup + min((r + 1) * per_round, requests)]
            run_round(server.urls(m)["v2"], chunk, measures[m])
    deadline = time.monotonic() + 5
    while True:
        times, _ = prediction_times(log, start)
        if all(len(times.get(m, [])) >= measures[m].requests for m in MODELS) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    for m in MODELS:
        measures[m].worker_ms = times.get(m) or None
    return [measures[m] for m in MODELS]


@app.command()
def main(
    generator: Optional[Path] = typer.Option(None, help="Generator bundle dir (default: train tiny bundles)."),
    cascade: Optional[Path] = typer.Option(None, help="Cascade bundle dir (with --generator)."),
    world: Optional[Path] = typer.Option(None, help="World whose test photos are sent (default: the tiny world)."),
    requests: int = typer.Option(60, min=4, max=5000, help="Measured requests per (model, batch)."),
    warmup: int = typer.Option(5, min=0, max=100, help="Unmeasured requests per (model, batch) first."),
    batches: str = typer.Option("1,8", help="Comma-separated batch sizes."),
    top_k: int = typer.Option(10, min=1, max=100, help="k of every request."),
    rounds: int = typer.Option(6, min=1, help="Alternate the two models in this many rounds per batch size."),
    threads: str = typer.Option("", help="Comma-separated torch thread counts of the workers, one server each "
                                         "(default: the count the workers choose, serving/threads.py)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the results as JSON."),
) -> None:
    from serving.archive import build_archive
    from serving.processes import running_torchserve
    from serving.threads import THREADS_ENV

    batch_sizes = [int(b) for b in batches.split(",")]
    counts = [t.strip() for t in threads.split(",") if t.strip()]
    if not all(t.isdigit() and int(t) > 0 for t in counts):
        raise typer.BadParameter(f"--threads: comma-separated positive integers expected, got {threads!r}")
    thread_counts: list[Optional[int]] = [int(t) for t in counts] or [None]
    with tempfile.TemporaryDirectory(prefix="onevision-bench-serving-") as tmp:
        root = Path(tmp)
        if generator is None or cascade is None:
            print("training tiny bundles ...", flush=True)
            t0 = time.perf_counter()
            generator, cascade, tiny_world = tiny_bundles(root / "models")
            world = world or tiny_world
            print(f"  done in {time.perf_counter() - t0:.0f}s", flush=True)
        if world is None:
            raise typer.BadParameter("--world is needed with --generator/--cascade (its test photos are sent)")
        store = root / "ab-store"
        store.mkdir()
        for name, bundle in (("generator", generator), ("cascade", cascade)):
            result = build_archive(bundle, root / name, model_name=name)
            (store / result.mar_path.name).symlink_to(result.mar_path)
        photos, users = query_photos(world, 64)
        results = []
        for count in thread_counts:
            env = {} if count is None else {THREADS_ENV: str(count)}
            label = "" if count is None else f", {count} torch thread{'s' * (count > 1)} per worker"
            print(f"starting TorchServe (v2 envelope{label}) with {', '.join(MODELS)} ...", flush=True)
            with running_torchserve(store, "kservev2", workdir=root / f"torchserve-{count}", extra_env=env) as server:
                for batch in batch_sizes:
                    plan = {m: request_bodies(photos, users, batch, warmup + requests, top_k) for m in MODELS}
                    results += measure(server, plan, batch, count, warmup, requests, rounds)
    print()
    print_table(results)
    if json_out:
        json_out.write_text(json.dumps([{**m.summary(), "latencies_ms": m.latencies_ms, "worker_ms": m.worker_ms}
                                        for m in results], indent=2) + "\n")


if __name__ == "__main__":
    app()
