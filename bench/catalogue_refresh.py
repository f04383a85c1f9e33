"""Benchmark: new products the day they list. Recall@10 on test queries for new vs old items, for the generator
and the cascade, before and after `onevision catalogue refresh` (issue 18).

    python bench/catalogue_refresh.py --out runs/refresh                     # default world, new_item_share 0.1
    python bench/catalogue_refresh.py --world W --bundles B --out runs/refresh   # reuse a pipeline's output
    python bench/catalogue_refresh.py --out runs/refresh --full-retrain      # + both arms retrained from scratch

The world's new items (`--new-item-share`) are listed on `--drift-start-day` (default: the first test day),
so the training steps (which see the catalogue as listed by the last training day) never see them. The
bundles are trained with the steps of `onevision pipeline run` (default configs; `--preset tiny` for a smoke
run) unless `--bundles` names a directory with `generator/` and `cascade/` bundles. The refresh adds the
world's new items (their rows of `items` and `item_views`) to both bundles, fine-tuning the generator with
old views replayed from the world, and the table compares both arms before and after it. With `--full-retrain`
each arm is also trained from scratch on the world with every item listed (no logs of the new items: nobody
could search for them before they listed), the reference a refresh is measured against.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import time
from pathlib import Path

from onevision.catalogue.config import RefreshConfig


def train_bundles(world_dir: Path, out: Path, preset: str, generator_epochs: tuple[int, ...] | None = None) -> Path:
    """Both bundles, trained with the pipeline's steps; reused when they are there already. `generator_epochs`:
    the three stages' epochs instead of the preset's (a shorter schedule on a busy machine)."""
    from onevision import steps

    bundles = out / "bundles"
    if (bundles / "generator" / "bundle.json").exists() and (bundles / "cascade" / "bundle.json").exists():
        return bundles
    cfg = steps.tiny_configs() if preset == "tiny" else steps.StepConfigs()
    if generator_epochs:
        gen = cfg.generator
        for stage, epochs in zip((1, 2, 3), generator_epochs):
            gen = gen.with_epochs(stage, epochs)
        cfg = dataclasses.replace(cfg, generator=gen)
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
                  show_progress=False, reward_dir=m / "cascade")
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


def relisted_world(world_dir: Path, out: Path) -> Path:
    """The same world with every item listed from day 0: what a full retrain on the listing day sees (the new
    items' shop views, but no logs of them, since nobody could search for them before). Tables are links to the
    world's own files; only `items` is rewritten."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from onevision.world.schema import TABLES_BY_NAME

    items_file = TABLES_BY_NAME["items"].filename
    relisted = out / "world-relisted"
    if (relisted / "world.json").exists():
        return relisted
    staging = out / "world-relisted.tmp"
    staging.mkdir(parents=True, exist_ok=True)
    for path in Path(world_dir).iterdir():
        if path.name != items_file and not (staging / path.name).exists():
            (staging / path.name).symlink_to(path.resolve())
    items = pq.read_table(Path(world_dir) / items_file)
    column = items.schema.get_field_index("first_day")
    items = items.set_column(column, items.schema.field(column), pa.array([0] * items.num_rows,
                                                                         items.schema.field(column).type))
    pq.write_table(items, staging / items_file)
    staging.rename(relisted)
    return relisted


def _fmt(x: float) -> str:
    return "–" if x != x else f"{x:.3f}"


def run_bench(world_dir: Path, bundles: Path, out: Path, preset: str, finetune: dict | None = None,
              full_retrain: Path | None = None) -> str:
    """Refresh both bundles with the world's new items and tabulate recall@10 for new vs old items;
    `full_retrain`: bundles trained on the relisted world, shown as each arm's reference."""
    from onevision import steps
    from onevision.catalogue.refresh import read_manifest
    from onevision.catalogue.tables import listed_between
    from onevision.world import load_world

    cfg = steps.tiny_configs() if preset == "tiny" else steps.StepConfigs()
    world = load_world(world_dir)
    listed_by = world.for_training().listed_by
    rows_dir = listed_between(world, listed_by).save(out / "rows")
    tuned = dataclasses.replace(cfg.refresh.finetune, **(finetune or {}))

    def tune(**kw) -> RefreshConfig:
        return dataclasses.replace(cfg.refresh, finetune=dataclasses.replace(tuned, **kw))

    # (arm, label, parent bundle, refresh config or None for the parent itself). Besides each arm's default, the
    # settings either side of it on the trade-off between finding new items and keeping old ones.
    variants = [
        ("generator", "before refresh", bundles / "generator", None),
        ("generator", "refresh, SIDs + trie only (zero-shot)", bundles / "generator",
         dataclasses.replace(cfg.refresh, finetune=None)),
        ("generator", "+ fine-tune (default)", bundles / "generator", tune()),
        ("generator", "+ fine-tune, distill x10 (gentler)", bundles / "generator", tune(distill=10 * tuned.distill)),
        ("generator", "+ fine-tune, 10 epochs, lr 1e-3, distill 1 (stronger)", bundles / "generator",
         tune(epochs=10, lr=1e-3, distill=1.0)),
        ("generator", "+ the stronger fine-tune, weights halfway to the parent's (WiSE-FT 0.5)", bundles / "generator",
         tune(epochs=10, lr=1e-3, distill=1.0, weight_interpolation=0.5)),
        ("cascade", "before refresh", bundles / "cascade", None),
        ("cascade", "refresh, no popularity prior", bundles / "cascade",
         dataclasses.replace(cfg.refresh, cold_start_clicks="zero")),
        *[("cascade", f"refresh, neighbours' popularity x {scale}", bundles / "cascade",
           dataclasses.replace(cfg.refresh, cold_start_scale=scale)) for scale in (0.25, 0.5)],
        ("cascade", "refresh, neighbours' popularity (default)", bundles / "cascade", cfg.refresh),
    ]
    if full_retrain is not None:  # what a retrain from scratch on the listing day reaches, per arm
        for arm in ("generator", "cascade"):
            last = max(i for i, v in enumerate(variants) if v[0] == arm)
            variants.insert(last + 1, (arm, "full retrain on the listing day (reference)", full_retrain / arm, None))
    results = []
    for arm, label, parent, config in variants:
        bundle, seconds = parent, None
        key = f"{arm}-{hashlib.sha256(repr((config, str(parent))).encode()).hexdigest()[:12]}"  # same config, parent
        if config is not None:
            bundle = out / "refreshed" / key
            if not (bundle / "bundle.json").exists():
                steps.refresh_step(parent, rows_dir / "items.parquet", rows_dir / "item_views.parquet", bundle,
                                   replay_views_path=Path(world_dir) / "item_views.parquet", config=config)
            seconds = read_manifest(bundle)["seconds"]
        t0 = time.perf_counter()
        recall = steps.listing_eval_step(bundle, world_dir, out / "listing" / key, cfg.listing,
                                         cfg.eval.decode)
        print(f"{arm} / {label}: old {recall['old']:.3f} new {recall['new']:.3f} "
              f"(eval {time.perf_counter() - t0:.0f} s, refresh {seconds} s)", flush=True)
        results.append((arm, label, recall, seconds))
    days = sorted({int(d) for _, _, r, _ in results for d in r["by_day"]})
    header = ["arm", "bundle", "old items", "new items", *[f"new, day {d}" for d in days], "refresh (s)"]
    first = results[0][2]
    lines = [f"recall@{first['k']} on the test queries: {first['n_old']} for old items, {first['n_new']} for "
             f"items listed after day {listed_by} (days since listing: {days})", "",
             "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for arm, label, r, seconds in results:
        per_day = [_fmt(r["by_day"].get(str(d), {}).get("recall", float("nan"))) for d in days]
        lines.append(f"| {arm} | {label} | {_fmt(r['old'])} | {_fmt(r['new'])} | " + " | ".join(per_day)
                     + f" | {'–' if seconds is None else f'{seconds:.0f}'} |")
    table = "\n".join(lines) + "\n"
    (out / "catalogue_refresh.md").write_text(table)
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("runs/refresh"))
    ap.add_argument("--world", type=Path, help="reuse this world (with new items listed after training)")
    ap.add_argument("--bundles", type=Path, help="reuse bundles: a directory with generator/ and cascade/")
    ap.add_argument("--preset", choices=("default", "tiny"), default="default")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--new-item-share", type=float, default=0.1)
    ap.add_argument("--drift-start-day", type=int, default=None, help="default: the first test day")
    ap.add_argument("--generator-epochs", type=lambda t: tuple(int(x) for x in t.split(",")), default=None,
                    help="epochs of generator stages 1,2,3 (default: the preset's)")
    ap.add_argument("--finetune", type=json.loads, default=None, help="JSON: FinetuneConfig overrides")
    ap.add_argument("--full-retrain", action="store_true",
                    help="also train both arms from scratch with the new items listed (slow: the training again)")
    ap.add_argument("--train-only", action="store_true")
    args = ap.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    world_dir = args.world or make_world(args.out, args)
    bundles = args.bundles or train_bundles(world_dir, args.out, args.preset, args.generator_epochs)
    full = None
    if args.full_retrain:
        full = train_bundles(relisted_world(world_dir, args.out), args.out / "full-retrain", args.preset,
                             args.generator_epochs)
    if args.train_only:
        return
    print(run_bench(world_dir, bundles, args.out, args.preset, args.finetune, full), flush=True)


if __name__ == "__main__":
    main()
