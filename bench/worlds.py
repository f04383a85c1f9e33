"""Benchmark: generator vs cascade over several worlds — per world, then mean and spread.

Runs the whole local training pipeline (`onevision pipeline run --local`, the same as `make run`) once per
world that has no finished run yet, then reads each run's parity report and prints the gated metrics, the
personalisation lift of both models and their ratios, with mean and standard deviation over the worlds.

    python bench/worlds.py --seeds 1 2 3 --discrepancies hard --out runs/worlds

A world is a seed at the default discrepancy ("medium"), or the default seed at another discrepancy
(`--discrepancies hard very-hard`). Each run takes about 8 minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from onevision.evaluation.parity import PARITY_JSON, load_parity

METRICS = ("recall@10", "ndcg@10", "ctr_proxy@10", "cvr_proxy@10", "orders_proxy@10", "hitrate@1",
           "personalisation_lift@10")


def run_world(out: Path, seed: int, discrepancy: str | None) -> Path:
    parity = out / "parity" / PARITY_JSON
    if parity.exists():
        return parity
    cmd = [sys.executable, "-m", "onevision.cli", "pipeline", "run", "--local", "--out", str(out),
           "--world-seed", str(seed)]
    if discrepancy is not None:
        from onevision.world.config import parse_discrepancy

        cmd += ["--world-config", json.dumps({"discrepancy": parse_discrepancy(discrepancy)})]
    print("$", " ".join(cmd), flush=True)
    # the gate failing is a result here, not an error: the parity report is written either way
    subprocess.run(cmd, check=False)
    if not parity.exists():
        raise SystemExit(f"the run in {out} wrote no parity report; see {out / 'logs'}")
    return parity


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="*", default=[1, 2, 3])
    ap.add_argument("--discrepancies", nargs="*", default=["hard"], help="named levels at seed 0 (easy … very-hard)")
    ap.add_argument("--out", type=Path, default=Path("runs/worlds"))
    args = ap.parse_args()

    worlds = [(f"seed {s}", args.out / f"seed-{s}", s, None) for s in args.seeds]
    worlds += [(f"seed 0, {d}", args.out / f"seed-0-{d}", 0, d) for d in args.discrepancies]
    reports = {name: load_parity(run_world(out, seed, d)) for name, out, seed, d in worlds}

    header = ["world", "gate"] + [f"{m} gen / cas" for m in METRICS]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    ratios: dict[str, list[float]] = {m: [] for m in METRICS}
    for name, rep in reports.items():
        gen, cas = rep.generator, rep.cascade
        cells = []
        for m in METRICS:
            g, c = gen.get(m), cas.get(m)
            if g is None or c is None or not c:
                cells.append("—")
                continue
            ratios[m].append(g / c)
            cells.append(f"{g:.3f} / {c:.3f} (×{g / c:.2f})")
        lines.append(f"| {name} | {'passed' if rep.passed else 'FAILED'} | " + " | ".join(cells) + " |")
    spread = [f"×{statistics.mean(v):.3f} ± {statistics.stdev(v) if len(v) > 1 else 0.0:.3f}" if v else "—"
              for v in ratios.values()]
    passed = sum(rep.passed for rep in reports.values())
    lines.append(f"| mean ± sd of the ratio | {passed}/{len(reports)} | " + " | ".join(spread) + " |")
    table = "\n".join(lines)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "worlds.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
