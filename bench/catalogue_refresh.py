"""Benchmark: new products the day they list. Recall@10 on test queries for new vs old items, for the generator
and the cascade, before and after `onevision catalogue refresh` (issue 18).

    python bench/catalogue_refresh.py --out runs/refresh                     # default world, new_item_share 0.1
    python bench/catalogue_refresh.py --world W --bundles B --out runs/refresh   # reuse a pipeline's output

The world's new items (`--new-item-share`) are listed on `--drift-start-day` (default: the first test day),
so the training steps (which see the catalogue as listed by the last training day) never see them. The
bundles are trained with the steps of `onevision pipeline run` (default configs; `--preset tiny` for a smoke
run) unless `--bundles` names a directory with `generator/` and `cascade/` bundles. The refresh adds the
world's new items (their rows of `items` and `item_views`) to both bundles, fine-tuning the generator with
old views replayed from the world, and the table compares both arms before and after it.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import pandas as pd


def train_bundles(world_dir: Path, out: Path, preset: str) -> Path:
    """Both bundles, trained with the pipeline's steps; reused when they are there already."""
    from onevision import steps

    bundles = out / "bundles"
    if (bundles / "generator" / "bundle.json").exists() and (bundles / "cascade" / "bundle.json").exists():
        return bundles
    cfg = steps.tiny_configs() if preset == "tiny" else steps.StepConfigs()
    m = out / "models"
    timings = {}

    def timed(name, fn, *a, **kw):
        t0 = time.perf_counter()
        fn(*a, **kw)
        timings[name] = round(time.perf_counter() - t0, 1)
        print(f"{name}: {timings[name]} s", flush=True)

    if not (m / "encoder" / "encoder.pt").exists():
        timed("encoder", steps.train_encoder_step, world_dir, m / "encoder", cfg.encoder, show_progress=False)
    if not (m / "vrq" / "trie.npz").exists():
        timed("vrq", steps.train_vrq_step, world_dir, m / "encoder", m / "vrq", cfg.vrq, show_progress=False)
    if not (m / "cascade" / "cascade.json").exists():
        timed("cascade", steps.train_cascade_step, world_dir, m / "encoder", m / "cascade", cfg.cascade,
              show_progress=False)
    for stage in (1, 2, 3):
        if not (m / f"generator{stage}" / "stage.json").exists() or \
                json.loads((m / f"generator{stage}" / "stage.json").read_text())["epochs_done"] < \
                cfg.generator.epochs(stage):
            timed(f"generator {stage}", steps.train_generator_step, world_dir, m / "encoder", m / "vrq",
                  m / f"generator{stage}", stage, m / f"generator{stage - 1}" if stage > 1 else None, cfg.generator,
                  show_progress=False)
    steps.make_bundle_step("generator", bundles / "generator", encoder_dir=m / "encoder", vrq_dir=m / "vrq",
                           generator_dir=m / "generator3", version="bench-gen")
    steps.make_bundle_step("cascade", bundles / "cascade", encoder_dir=m / "encoder", cascade_dir=m / "cascade",
                           version="bench-cas")
    (out / "train_seconds.json").write_text(json.dumps(timings, indent=2) + "\n")
    return bundles


def make_world(out: Path, args: argparse.Namespace) -> Path:
    from onevision import steps
    from onevision.world.config import DriftConfig, WorldConfig

    world_dir = out / "world"
    if (world_dir / "world.json").exists():
        return world_dir
    base = steps.tiny_configs().world if args.preset == "tiny" else WorldConfig(seed=args.seed)
    start = base.test_start_day if args.drift_start_day is None else args.drift_start_day
    cfg = dataclasses.replace(base, drift=DriftConfig(start_day=start, new_item_share=args.new_item_share))
    steps.generate_world_step(world_dir, cfg)
    return world_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("runs/refresh"))
    ap.add_argument("--world", type=Path, help="reuse this world (with new items listed after training)")
    ap.add_argument("--bundles", type=Path, help="reuse bundles: a directory with generator/ and cascade/")
    ap.add_argument("--preset", choices=("default", "tiny"), default="default")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--new-item-share", type=float, default=0.1)
    ap.add_argument("--drift-start-day", type=int, default=None, help="default: the first test day")
    ap.add_argument("--train-only", action="store_true")
    args = ap.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    world_dir = args.world or make_world(args.out, args)
    bundles = args.bundles or train_bundles(world_dir, args.out, args.preset)
    if args.train_only:
        return
    from onevision.catalogue.bench import run_bench

    print(run_bench(world_dir, bundles, args.out, args.preset), flush=True)


if __name__ == "__main__":
    main()
