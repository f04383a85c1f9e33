"""Benchmark: what the generator's user term trades, and what it could reach with perfect knowledge of the user.

The generator ranks SIDs by log p(sid | photo) + b(user, attribute code) (a product of experts). This script
evaluates one trained generator bundle with the user term scaled by each α in `--scales` (α = 1 is the model as
trained; α = 0 removes personalisation) and prints recall@10, NDCG@10, the CTR/CVR proxies and the
personalisation lift next to the cascade's. With `--oracle`, the learned term is replaced by the world's own
preference score of each code's brand and price band (`onevision.world.behaviour.preference_score`) times α:
an upper bound that shows how much of the gap is the estimate of the user's taste from a few clicks, not the
model's form. The oracle is a diagnostic only; nothing in the product reads the world's ground truth.

    python bench/affinity_scale.py --world runs/local/world --generator-bundle runs/local/bundles/generator \
        --cascade-bundle runs/local/bundles/cascade --oracle

About 1 minute per row on 2 cores (800 test queries, each evaluated with and without users).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from onevision.bundle import load_retriever
from onevision.evaluation import EvalConfig, evaluate
from onevision.generator.decode import PruningConfig
from onevision.generator.retriever import DecodeOptions
from onevision.world import load_world
from onevision.world.behaviour import CatalogueFacts, preference_score

COLUMNS = ("recall@10", "ndcg@10", "ctr_proxy@10", "ctr_proxy_without_users@10", "personalisation_lift@10",
           "cvr_proxy@10")


def oracle_biases(retriever, world, scale: float):
    """level_biases replacement: the attribute level's term becomes α × the world's preference score of each
    attribute code (unknown users: none); the other levels' learned terms stay."""
    prefs, codes = world.behaviour.prefs, retriever.vrq.attributes
    used = codes.brand >= 0
    n = len(codes.brand)
    # the codes as a catalogue of (brand, price band) rows, so the world's own preference_score scores them
    as_items = CatalogueFacts(np.arange(n), np.zeros(n, np.int64), np.maximum(codes.brand, 0),
                              np.maximum(codes.price_band, 0), np.zeros(n, np.int64), np.arange(n))

    learned = retriever.generator.level_biases

    def biases(batch):
        out = learned(batch)
        if batch.user_ids is None:
            return out
        ids = batch.user_ids.numpy()
        rows = prefs.rows(np.maximum(ids, 0))
        score = preference_score(prefs, as_items, rows[:, None], np.arange(n)[None, :])
        score = np.where(used[None], score, -30.0) * (ids >= 0)[:, None]
        out[codes.level] = torch.from_numpy(scale * score).float()
        return out

    return biases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", type=Path, required=True)
    parser.add_argument("--generator-bundle", type=Path, required=True)
    parser.add_argument("--cascade-bundle", type=Path, required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--scales", default="0.7,1,1.3,1.6,2", help="comma-separated α for the learned term")
    parser.add_argument("--oracle", action="store_true", help="also rows with the world's true preferences")
    parser.add_argument("--oracle-scales", default="1,1.5,2.5")
    parser.add_argument("--queries", type=int, default=None)
    args = parser.parse_args()

    torch.set_num_threads(2)
    world = load_world(args.world)
    generator = load_retriever(args.generator_bundle, DecodeOptions(50, PruningConfig()))  # what the parity gate judges
    if getattr(generator.generator, "affinity_scorer", None) is None:
        raise SystemExit(f"{args.generator_bundle} has no user x attribute term to scale")
    model = generator.generator

    def run(retriever) -> dict:
        result = evaluate(retriever, world, EvalConfig(split=args.split, ks=(10, 50), latency_samples=0,
                                                       max_queries=args.queries), progress=False)
        return result.metrics

    rows = [("cascade", run(load_retriever(args.cascade_bundle)))]
    weight = model.affinity_scorer.weight.detach().clone()
    for scale in (float(x) for x in args.scales.split(",")):
        with torch.no_grad():
            model.affinity_scorer.weight.copy_(weight * scale)
        rows.append((f"generator, learned term × {scale:g}" + (" (as trained)" if scale == 1 else ""), run(generator)))
    with torch.no_grad():
        model.affinity_scorer.weight.copy_(weight)
    if args.oracle:
        for scale in (float(x) for x in args.oracle_scales.split(",")):
            model.level_biases = oracle_biases(generator, world, scale)  # instance attribute shadows the method
            rows.append((f"generator, true preferences × {scale:g} (oracle, upper bound)", run(generator)))
        del model.level_biases

    cascade = rows[0][1]
    header = ["model", *COLUMNS, "CTR vs cascade"]
    print(f"{args.split} split; lift = CTR proxy@10 with users / without, same model\n")
    print("| " + " | ".join(header) + " |")
    print("|---" * len(header) + "|")
    for name, m in rows:
        cells = [f"{m[c]:.4f}" for c in COLUMNS]
        print(f"| {name} | " + " | ".join(cells) + f" | {m['ctr_proxy@10'] / cascade['ctr_proxy@10']:.3f} |")


if __name__ == "__main__":
    main()
