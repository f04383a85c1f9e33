"""Benchmark: the whole pipeline as the catalogue grows — wall time and peak memory per step, storage, and what the
ANN's switch to a graph index costs the cascade in recall (issue 17).

    python bench/scale.py --sizes 1000 10000 100000 --out runs/scale

Per size: `onevision world generate --items N` (a subprocess, timed with its own rusage), then the whole local
training pipeline on that world (`onevision pipeline run --local --data-uri`, the same steps as `make run`, its
default step budgets). Each step's wall time comes from the run's summary.json and its peak resident memory from
the `peak_rss_mb` every step logs with its metrics. Sizes whose run finished are reused; delete `--out` to
re-measure. Not part of CI: 100k items take about an hour on 2 cores.

The cascade's faiss index is exact (flat) up to `RecallConfig.flat_max_items` and HNSW above; for every size the
table shows the cascade's recall@10 with the index it built and with an exact index over the same embeddings.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

# summary.json task names → what the table calls them, in pipeline order
STEPS = (("validate-data", "validate data (GX, every row)"), ("train-encoder", "encoder + catalogue features"),
         ("train-cascade", "cascade"), ("train-vrq", "VRQ"), ("train-generator", "generator stage 1"),
         ("train-generator-2", "generator stage 2"), ("train-generator-3", "generator stage 3"),
         ("evaluate-model-2", "evaluate generator"), ("evaluate-model", "evaluate cascade"),
         ("parity-gate", "parity gate"), ("build-archive", "archive"), ("deploy-canary", "deploy canary"))


def timed_subprocess(cmd: list[str], log: Path) -> dict:
    """Wall seconds and peak RSS (MiB) of one child process (`os.wait4` gives that child's own rusage)."""
    print("$", " ".join(cmd), flush=True)
    start = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024.0, 1),
            "exit_code": os.waitstatus_to_exitcode(status)}


def du_mb(path: Path) -> float:
    """MiB under a directory (links followed: a run's bundles/ are links into its task directories), or of a file."""
    path = path.resolve()
    if path.is_file():
        return round(path.stat().st_size / 2**20, 2)
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20, 2) if path.exists() else 0.0


def run_size(items: int, out: Path, seed: int, preset: str = "default", world_flags: tuple[str, ...] = ()) -> dict:
    """One size: the world (reused when a previous attempt wrote it) and the pipeline. A pipeline that failed is
    re-run with kfp.local's cache, so steps that succeeded before are not repeated; their timings are the earlier
    attempt's (`attempt` per step says which)."""
    size_dir = out / f"items-{items}"
    result_file = size_dir / "scale.json"
    if result_file.exists():
        return json.loads(result_file.read_text())
    size_dir.mkdir(parents=True, exist_ok=True)
    world, run = size_dir / "world", size_dir / "run"
    onevision = [sys.executable, "-m", "onevision.cli"]
    generated = size_dir / "world_generate.json"
    if not generated.exists():
        shutil.rmtree(world, ignore_errors=True)
        generate = timed_subprocess([*onevision, "world", "generate", "--out", str(world), "--items", str(items),
                                     "--seed", str(seed), *world_flags], size_dir / "world.log")
        if generate["exit_code"]:
            raise SystemExit(f"world generation failed; see {size_dir / 'world.log'}")
        generated.write_text(json.dumps(generate) + "\n")
    generate = json.loads(generated.read_text())
    earlier = [json.loads(f.read_text()) for f in sorted(size_dir.glob("summary-attempt-*.json"))]
    if (run / "summary.json").exists():  # a failed earlier attempt: keep its timings, re-run with the cache
        earlier.append(json.loads((run / "summary.json").read_text()))
        (size_dir / f"summary-attempt-{len(earlier)}.json").write_text((run / "summary.json").read_text())
    cache = ["--cache"] if earlier else ["--no-cache"]
    pipeline = timed_subprocess([*onevision, "pipeline", "run", "--local", *cache, "--out", str(run),
                                 "--data-uri", str(world), "--preset", preset], size_dir / "pipeline.log")
    if not (run / "summary.json").exists():
        raise SystemExit(f"the pipeline wrote no summary; see {size_dir / 'pipeline.log'}")
    summary = json.loads((run / "summary.json").read_text())
    steps = {name: step_timing(name, [*earlier, summary]) for name, _ in STEPS}
    result = {
        "items": items, "world_generate": generate, "pipeline": pipeline, "succeeded": summary["succeeded"],
        "attempts": len(earlier) + 1, "steps": steps, "storage_mb": storage(world, run), "quality": quality(world, run),
    }
    result_file.write_text(json.dumps(result, indent=2) + "\n")
    return result


def step_timing(name: str, summaries: list[dict]) -> dict:
    """The latest attempt that ran the step (a cached step has no timing of its own)."""
    for attempt in range(len(summaries), 0, -1):
        task = summaries[attempt - 1]["tasks"].get(name, {})
        if task.get("seconds") is not None and task.get("status") == "succeeded":
            rss = [m["peak_rss_mb"] for m in (task.get("metrics") or {}).values() if m.get("peak_rss_mb")]
            return {"status": task["status"], "seconds": task["seconds"], "peak_rss_mb": max(rss) if rss else None,
                    "attempt": attempt}
    last = summaries[-1]["tasks"].get(name, {})
    return {"status": last.get("status"), "seconds": None, "peak_rss_mb": None, "attempt": len(summaries)}


def storage(world: Path, run: Path) -> dict:
    bundles = run / "bundles"
    return {"world": du_mb(world), "item_views": du_mb(world / "item_views.parquet"),
            "generator_bundle": du_mb(bundles / "generator"), "cascade_bundle": du_mb(bundles / "cascade"),
            "ann_index": du_mb(bundles / "cascade" / "cascade" / "recall"),
            "trie": du_mb(bundles / "generator" / "vrq" / "trie.npz")}


def quality(world_dir: Path, run: Path) -> dict:
    """Parity metrics of both arms, and the cascade's recall@10 with its own index vs an exact one."""
    import dataclasses

    from onevision.bundle import load_retriever
    from onevision.cascade import AnnRecall
    from onevision.evaluation import EvalConfig, evaluate
    from onevision.evaluation.parity import PARITY_JSON, load_parity

    out: dict = {}
    parity_file = run / "parity" / PARITY_JSON
    if parity_file.exists():
        rep = load_parity(parity_file)
        out["gate_passed"] = rep.passed
        for arm, metrics in (("generator", rep.generator), ("cascade", rep.cascade)):
            out[arm] = {k: metrics.get(k) for k in ("recall@10", "ndcg@10", "ctr_proxy@10", "cvr_proxy@10",
                                                    "latency_ms_p50")}
    cascade_dir = run / "bundles" / "cascade"
    if cascade_dir.exists():
        cascade = load_retriever(cascade_dir)
        recall = cascade.recall
        stored = recall.index.reconstruct_n(0, recall.index.ntotal)
        exact = AnnRecall.fit(recall.item_ids, stored, dataclasses.replace(recall.config, index="flat"))
        cfg = EvalConfig(ks=(10,), latency_samples=0)
        own = evaluate(cascade, world_dir, cfg, progress=False).metrics["recall@10"]
        cascade.recall = exact
        flat = evaluate(cascade, world_dir, cfg, progress=False).metrics["recall@10"]
        out["ann"] = {"index": recall.kind, "cascade_recall@10": own, "cascade_recall@10_exact_index": flat}
    return out


def _cell(step: dict | None) -> str:
    if not step or step.get("seconds") is None:
        return "—"
    rss = step.get("peak_rss_mb")
    return f"{step['seconds']:.0f} s / {rss / 1024:.2f} GiB" if rss else f"{step['seconds']:.0f} s"


def table(results: list[dict]) -> str:
    head = ["step"] + [f"{r['items']:,} items" for r in results]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    lines.append("| world generate | " + " | ".join(_cell(r["world_generate"]) for r in results) + " |")
    for name, label in STEPS:
        lines.append(f"| {label} | " + " | ".join(_cell(r["steps"].get(name)) for r in results) + " |")
    lines.append("| whole pipeline (wall, peak of the runner) | " + " | ".join(_cell(r["pipeline"]) for r in results) + " |")
    lines.append("| storage: world / item views (MiB) | " + " | ".join(
        f"{r['storage_mb']['world']:.0f} / {r['storage_mb']['item_views']:.0f}" for r in results) + " |")
    lines.append("| storage: generator / cascade bundle (MiB) | " + " | ".join(
        f"{r['storage_mb']['generator_bundle']:.0f} / {r['storage_mb']['cascade_bundle']:.0f}" for r in results) + " |")
    lines.append("| ANN index / SID trie (MiB) | " + " | ".join(
        f"{r['storage_mb']['ann_index']:.1f} / {r['storage_mb']['trie']:.1f}" for r in results) + " |")

    def q(r: dict, arm: str, key: str) -> str:
        v = r["quality"].get(arm, {}).get(key)
        return "—" if v is None else f"{v:.3f}"

    for key in ("recall@10", "ndcg@10", "ctr_proxy@10"):
        lines.append(f"| {key} generator / cascade | " + " | ".join(
            f"{q(r, 'generator', key)} / {q(r, 'cascade', key)}" for r in results) + " |")
    lines.append("| parity gate | " + " | ".join(
        {True: "passed", False: "FAILED"}.get(r["quality"].get("gate_passed"), "—") for r in results) + " |")
    lines.append("| cascade ANN index: recall@10 with it / exact | " + " | ".join(
        f"{r['quality']['ann']['index']}: {r['quality']['ann']['cascade_recall@10']:.3f} / "
        f"{r['quality']['ann']['cascade_recall@10_exact_index']:.3f}" if "ann" in r["quality"] else "—"
        for r in results) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------- projection (docs/scale.md)
LOG_TIME = re.compile(r"\[KFP Executor (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+) INFO\]: (.*)")


def epoch_seconds(log: Path, pattern: str) -> float | None:
    """Median wall seconds between consecutive epoch lines matching `pattern` in a step's log (epoch 1 carries
    the step's setup, so the median of the later gaps is one epoch's training)."""
    from datetime import datetime

    if not log.exists():
        return None
    times = [datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f") for line in log.read_text().splitlines()
             if (m := LOG_TIME.search(line)) and re.search(pattern, m.group(2))]
    gaps = sorted((b - a).total_seconds() for a, b in zip(times, times[1:]))
    return gaps[len(gaps) // 2] if gaps else None


def seconds_between(log: Path, first: str, last: str) -> float | None:
    """Wall seconds from the last line matching `first` to the first later line matching `last`."""
    from datetime import datetime

    if not log.exists():
        return None
    start = None
    for line in log.read_text().splitlines():
        m = LOG_TIME.search(line)
        if not m:
            continue
        when = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f")
        if re.search(first, m.group(2)):
            start = when
        elif start is not None and re.search(last, m.group(2)):
            return (when - start).total_seconds()
    return None


def measured_rates(result: dict, out: Path, counts: dict[str, int]) -> dict:
    """Seconds per optimiser step of the encoder and generator stage 1 at this size, from the run's logs."""
    from onevision.generator.staging import GeneratorTrainingConfig
    from onevision.vision.config import EncoderTrainConfig

    size_dir = out / f"items-{result['items']}"
    logs = size_dir / "run" / "logs"
    enc, gen = EncoderTrainConfig(), GeneratorTrainingConfig()
    n, views, photos = counts["items"], counts["views_per_item"], counts["train_photos"]
    enc_steps = enc.batches_per_epoch(-(-n // enc.items_per_batch))
    examples = n * views * (1 + gen.augmented_copies) + photos
    examples = min(examples, gen.stage1_max_steps * gen.batch_size) if gen.stage1_max_steps else examples
    gen_steps = -(-examples // gen.batch_size)
    if gen.stage1_max_steps:
        gen_steps = min(gen_steps, -(-gen.stage1_max_steps // gen.stage1_epochs))
    enc_epoch = epoch_seconds(logs / "train-encoder.log", r"^encoder epoch")
    tail = seconds_between(logs / "train-encoder.log", r"^encoder epoch \d+/(\d+)", r"^Wrote executor output")
    gen_epoch = epoch_seconds(logs / "train-generator.log", r"^stage 1 epoch")
    return {"encoder_s_per_step": enc_epoch / enc_steps if enc_epoch else None,
            "stage1_s_per_step": gen_epoch / gen_steps if gen_epoch else None,
            # catalogue features: every view and every train and test photo, after the last epoch
            "feature_s_per_image": tail / (n * views + counts["photos"]) if tail else None}


def projection(results: list[dict], out: Path, target: int, gpu_tflops: float) -> str:
    """docs/scale.md's figures at `target` items, each from the named measurement of the largest measured size."""
    from onevision.generator.staging import GeneratorTrainingConfig
    from onevision.vision.config import EncoderTrainConfig

    big = max(results, key=lambda r: r["items"])
    counts = world_counts(out / f"items-{big['items']}" / "world")
    n, views, photos = counts["items"], counts["views_per_item"], counts["train_photos"]
    rate = measured_rates(big, out, counts)
    flops = step_flops(out / f"items-{big['items']}" / "world")
    st = big["storage_mb"]
    per_item = {k: st[k] / n for k in ("item_views", "generator_bundle", "ann_index")}
    enc, gen = EncoderTrainConfig(), GeneratorTrainingConfig()
    enc_steps = -(-target // enc.items_per_batch)  # one epoch: every item once, in batches of items_per_batch
    gen_examples = target * views * (1 + gen.augmented_copies) + photos
    gen_steps = -(-gen_examples // gen.batch_size)
    feature_images = target * views
    rows = [
        ("item views (64 px PNG)", f"{per_item['item_views'] * target / 1024:.0f} GiB",
         f"{per_item['item_views'] * 1024:.1f} KiB per item at {n:,} items"),
        ("catalogue features (float32, 128-d per view + item)", f"{target * (views + 1) * 128 * 4 / 2**30:.1f} GiB",
         f"{views} views x 128 x 4 B + the item's mean"),
        (f"cascade ANN index ({big['quality'].get('ann', {}).get('index', '?')})", f"{per_item['ann_index'] * target / 1024:.1f} GiB",
         f"{per_item['ann_index'] * 1024:.2f} KiB per item at {n:,} items"),
        ("generator bundle (weights, VRQ, SID trie, users, the encoder's catalogue features)", f"{per_item['generator_bundle'] * target / 1024:.1f} GiB",
         f"{per_item['generator_bundle'] * 1024:.2f} KiB per item at {n:,} items"),
    ]
    hours = {}
    for name, steps_, s_step, step_flop in (("encoder epoch", enc_steps, rate["encoder_s_per_step"], flops["encoder_step"]),
                                            ("generator stage-1 epoch", gen_steps, rate["stage1_s_per_step"], flops["stage1_step"])):
        cpu_h = steps_ * s_step / 3600 if s_step else float("nan")
        gpu_h = steps_ * step_flop / (gpu_tflops * 1e12) / 3600
        hours[name] = (cpu_h, gpu_h)
        rows.append((f"{name}: {steps_:,} steps, CPU node (2 cores)", f"{cpu_h:,.0f} h",
                     f"{s_step:.3f} s/step measured at {n:,} items" if s_step else "no measurement"))
        rows.append((f"{name}: one GPU", f"{gpu_h * 60:.1f} min",
                     f"{step_flop / 1e9:.1f} GFLOP/step (torch FlopCounterMode) at an assumed {gpu_tflops:.0f} TFLOP/s sustained"))
    feat_gpu_h = feature_images * flops["encoder_fwd"] / (gpu_tflops * 1e12) / 3600
    rows.append(("catalogue features: one GPU", f"{feat_gpu_h * 60:.1f} min",
                 f"{feature_images:,} views x {flops['encoder_fwd'] / 1e6:.0f} MFLOP forward"))
    daily_gpu_h = sum(g for _, g in hours.values()) + feat_gpu_h
    per_image = rate["feature_s_per_image"]
    daily_cpu_h = sum(c for c, _ in hours.values()) + feature_images * (per_image or float("nan")) / 3600
    if math.isfinite(daily_cpu_h):
        rows.append(("daily retrain (1 encoder + 1 stage-1 epoch + features) in 4 h, CPU nodes",
                     f"{math.ceil(daily_cpu_h / 4)} nodes of 2 cores",
                     f"{daily_cpu_h:,.0f} node-hours; features at {per_image * 1e3:.2f} ms/image measured"))
    rows.append(("the same on GPUs", f"{max(1, math.ceil(daily_gpu_h / 4))} GPU",
                 f"{daily_gpu_h * 60:.0f} GPU-minutes at the assumed rate: the compute fits one GPU; reading "
                 f"{feature_images:,} images a day is the real limit. Linear DDP scaling assumed; stages 2-3 grow with "
                 "traffic, not items"))
    lines = [f"| at {target:,} items | projection | from |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def step_flops(world: Path) -> dict[str, float]:
    """FLOPs of one optimiser step at the default architectures (torch.utils.flop_counter): the encoder's (a batch
    of items_per_batch anchors and positives, forward + backward), generator stage 1's (batch_size examples) and one
    image's encoder forward."""
    import numpy as np
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from onevision.generator.model import GeneratorInput
    from onevision.generator.staging import GeneratorTrainingConfig, stage_model
    from onevision.vision.config import EncoderConfig, EncoderTrainConfig
    from onevision.vision.encoder import ImageEncoder
    from onevision.vrq.fit import VRQArtifact

    enc_cfg, train_cfg, gen_cfg = EncoderConfig(), EncoderTrainConfig(), GeneratorTrainingConfig()
    encoder = ImageEncoder(enc_cfg)
    x = torch.rand(2 * train_cfg.items_per_batch, 3, enc_cfg.image_size, enc_cfg.image_size)
    with FlopCounterMode(display=False) as fc:
        encoder(x).sum().backward()
    encoder_step = fc.get_total_flops()
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        encoder.tokens(x[:1])
    encoder_fwd = fc.get_total_flops()
    vrq = VRQArtifact.load(world.parent / "run" / "bundles" / "generator" / "vrq")
    model = stage_model(1, gen_cfg, encoder, vrq, None, None)
    b, t = gen_cfg.batch_size, enc_cfg.n_tokens
    inp = GeneratorInput(torch.rand(b, t, enc_cfg.token_dim), torch.rand(b, enc_cfg.embed_dim),
                         torch.softmax(torch.rand(b, t), 1), None, None, None, None)
    sids = torch.from_numpy(np.resize(vrq.sids.sids, (b, vrq.sids.sids.shape[1])))  # a tiny catalogue repeats
    with FlopCounterMode(display=False) as fc:
        sum(o.sum() for o in model(inp, sids)).backward()
    return {"encoder_step": encoder_step, "stage1_step": fc.get_total_flops(), "encoder_fwd": encoder_fwd}


def world_counts(world: Path) -> dict[str, int]:
    import pyarrow.parquet as pq

    from onevision.world import load_world

    views = pq.ParquetFile(world / "item_views.parquet").metadata.num_rows
    items = pq.ParquetFile(world / "items.parquet").metadata.num_rows
    queries = load_world(world).queries
    return {"items": items, "views_per_item": round(views / items),
            "train_photos": int((queries["split"] == "train").sum()), "photos": int(queries["split"].isin(["train", "test"]).sum())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--out", type=Path, default=Path("runs/scale"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--project", type=int, default=10_000_000, help="catalogue size of the projection table")
    ap.add_argument("--gpu-tflops", type=float, default=50.0,
                    help="sustained TFLOP/s assumed for one GPU in the projection (none was measured here)")
    ap.add_argument("--preset", default="default", help="step configs of the pipeline runs (tiny: a smoke test)")
    ap.add_argument("--world-flags", default="", help="extra `onevision world generate` flags, e.g. '--days 4'")
    args = ap.parse_args(argv)
    flags = tuple(args.world_flags.split())
    results = [run_size(n, args.out, args.seed, args.preset, flags) for n in args.sizes]
    for r in results:  # storage is cheap to re-read, and follows the bundles' links as they are now
        size_dir = args.out / f"items-{r['items']}"
        r["storage_mb"] = storage(size_dir / "world", size_dir / "run")
    text = table(results) + "\n\n" + projection(results, args.out, args.project, args.gpu_tflops)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scale.md").write_text(text + "\n")
    (args.out / "scale.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
