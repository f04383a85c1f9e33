"""Benchmark: generator (full beam search and dynamic pruning settings) vs the cascade, in one run.

Prints, for each setting, recall@10 on test queries, the generator's FLOPs per query (transformer prefill +
decoding, counted with torch's FlopCounterMode), and latency per query at batch 1 and batch 32 — with
ratios against the unpruned generator and against the cascade measured in the same process.

    python bench/generator_vs_cascade.py --world runs/local/world \
        --generator-bundle runs/local/bundle_generator --cascade-bundle runs/local/bundle_cascade
"""
from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from onevision.bundle import load_retriever
from onevision.evaluation.metrics import recall_at_k
from onevision.generator.data import encode_bank, make_input
from onevision.generator.decode import PruningConfig, beam_search
from onevision.vision.encoder import to_pixels
from onevision.vision.images import decode_images
from onevision.world import load_world


@dataclass(frozen=True)
class Setting:
    name: str
    beam_width: int
    pruning: PruningConfig


SETTINGS = (
    Setting("full beam 20", 20, PruningConfig()),
    Setting("tokens 12/16", 20, PruningConfig(keep_tokens=12)),
    Setting("tokens 8/16", 20, PruningConfig(keep_tokens=8)),
    Setting("beam margin 8", 20, PruningConfig(beam_margin=8.0)),
    Setting("beam conf 0.99", 20, PruningConfig(confidence_mass=0.99, min_width=10)),
    Setting("margin 6 + conf 0.99", 20, PruningConfig(beam_margin=6.0, confidence_mass=0.99, min_width=10)),
    Setting("tokens 12 + margin 6 + conf 0.99", 20, PruningConfig(keep_tokens=12, beam_margin=6.0, confidence_mass=0.99, min_width=10)),
    Setting("tokens 8 + margin 4 + conf 0.95", 20, PruningConfig(keep_tokens=8, beam_margin=4.0, confidence_mass=0.95, min_width=10)),
)


def latency_ms(fn, images: np.ndarray, users: np.ndarray, batch: int, repeats: int) -> float:
    """Median over repeats of the mean time per query, processing `images` in batches of `batch`."""
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for s in range(0, len(images), batch):
            fn(images[s : s + batch], users[s : s + batch])
        runs.append((time.perf_counter() - start) / len(images) * 1000)
    return float(np.median(runs))


def generator_flops(retriever, images: np.ndarray, setting: Setting) -> float:
    bank = encode_bank(retriever.encoder, to_pixels(images))
    inp = make_input(bank, np.arange(len(images)))
    with FlopCounterMode(display=False) as counter:
        beam_search(retriever.generator, inp, retriever.vrq.trie, setting.beam_width, 10, setting.pruning)
    return counter.get_total_flops() / len(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", required=True)
    parser.add_argument("--generator-bundle", required=True)
    parser.add_argument("--cascade-bundle", required=True)
    parser.add_argument("--queries", type=int, default=400, help="test queries for quality")
    parser.add_argument("--latency-queries", type=int, default=64, help="queries timed per setting")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 = one request per core)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    world = load_world(args.world)
    q = world.queries_of("test").iloc[: args.queries]
    images = decode_images(q["image"].tolist())
    users = q["user_id"].to_numpy()
    targets = q["target_item_id"].to_numpy()
    generator = load_retriever(args.generator_bundle)
    cascade = load_retriever(args.cascade_bundle)
    lat_images, lat_users = images[: args.latency_queries], users[: args.latency_queries]

    rows = []
    cas_recall = recall_at_k(cascade.retrieve(images, users, 10).item_ids, targets, 10)
    cas_b1 = latency_ms(lambda i, u: cascade.retrieve(i, u, 10), lat_images, lat_users, 1, args.repeats)
    cas_b32 = latency_ms(lambda i, u: cascade.retrieve(i, u, 10), lat_images, lat_users, 32, args.repeats)
    rows.append(("cascade", cas_recall, math.nan, cas_b1, cas_b32))
    for setting in SETTINGS:
        generator.beam_width, generator.pruning = setting.beam_width, setting.pruning
        recall = recall_at_k(generator.retrieve(images, users, 10).item_ids, targets, 10)
        flops = generator_flops(generator, images[:64], setting)
        b1 = latency_ms(lambda i, u: generator.retrieve(i, u, 10), lat_images, lat_users, 1, args.repeats)
        b32 = latency_ms(lambda i, u: generator.retrieve(i, u, 10), lat_images, lat_users, 32, args.repeats)
        rows.append((f"generator: {setting.name}", recall, flops, b1, b32))

    full = rows[1]
    print(f"{len(q)} test queries for quality, {len(lat_images)} timed, torch threads={args.threads}\n")
    print("| setting | recall@10 | Δ recall (pts) vs full | gen. MFLOPs/query | FLOPs vs full | ms/query b=1 | "
          "b=1 vs full | b=1 vs cascade | ms/query b=32 | b=32 vs cascade |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, recall, flops, b1, b32 in rows:
        flops_cell = "—" if math.isnan(flops) else f"{flops / 1e6:.1f}"
        ratio_flops = "—" if math.isnan(flops) else f"{flops / full[2]:.2f}"
        print(f"| {name} | {recall:.3f} | {100 * (recall - full[1]):+.1f} | {flops_cell} | {ratio_flops} | {b1:.2f} | "
              f"{b1 / full[3]:.2f} | {b1 / cas_b1:.2f} | {b32:.2f} | {b32 / cas_b32:.2f} |")


if __name__ == "__main__":
    main()
