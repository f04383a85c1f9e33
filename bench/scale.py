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
import os
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
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20, 1) if path.exists() else 0.0


def run_size(items: int, out: Path, seed: int) -> dict:
    size_dir = out / f"items-{items}"
    result_file = size_dir / "scale.json"
    if result_file.exists():
        return json.loads(result_file.read_text())
    size_dir.mkdir(parents=True, exist_ok=True)
    world, run = size_dir / "world", size_dir / "run"
    onevision = [sys.executable, "-m", "onevision.cli"]
    generate = timed_subprocess([*onevision, "world", "generate", "--out", str(world), "--items", str(items),
                                 "--seed", str(seed)], size_dir / "world.log")
    if generate["exit_code"]:
        raise SystemExit(f"world generation failed; see {size_dir / 'world.log'}")
    pipeline = timed_subprocess([*onevision, "pipeline", "run", "--local", "--no-cache", "--out", str(run),
                                 "--data-uri", str(world)], size_dir / "pipeline.log")
    summary = json.loads((run / "summary.json").read_text())
    steps = {}
    for name, _ in STEPS:
        task = summary["tasks"].get(name, {})
        rss = [m["peak_rss_mb"] for m in (task.get("metrics") or {}).values() if m.get("peak_rss_mb")]
        steps[name] = {"status": task.get("status"), "seconds": task.get("seconds"),
                       "peak_rss_mb": max(rss) if rss else None}
    result = {
        "items": items, "world_generate": generate, "pipeline": pipeline, "succeeded": summary["succeeded"],
        "steps": steps, "storage_mb": storage(world, run), "quality": quality(world, run),
    }
    result_file.write_text(json.dumps(result, indent=2) + "\n")
    return result


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--out", type=Path, default=Path("runs/scale"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    results = [run_size(n, args.out, args.seed) for n in args.sizes]
    text = table(results)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scale.md").write_text(text + "\n")
    (args.out / "scale.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
