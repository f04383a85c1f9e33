"""Benchmark: generator (full beam search and dynamic pruning settings) vs the cascade, in one run.

For each setting: recall@10 and the CTR proxy@10 on test queries (with users), the generator's FLOPs per
query (transformer prefill + decoding, counted with torch's FlopCounterMode) and the FLOP floor they imply on
this machine (FLOPs ÷ the measured single-thread GFLOP/s of a plain matmul), the decode time alone (everything
after the shared image encoder) at batch 1 and 32, and end-to-end latency per query at batch 1 and batch 32 for each
thread count — with ratios against the unpruned generator and against the cascade measured in the same
process. `--plot` writes the cost/quality plot (SVG) of every setting.

    python bench/generator_vs_cascade.py --world runs/local/world \
        --generator-bundle runs/local/bundles/generator --cascade-bundle runs/local/bundles/cascade \
        --plot docs/img/pruning.svg
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from onevision.bundle import load_retriever
from onevision.evaluation.metrics import ctr_proxy, recall_at_k
from onevision.generator.data import encode_bank, make_input
from onevision.generator.decode import SERVING_BEAM_WIDTH, SERVING_PRUNING, PruningConfig, beam_search
from onevision.vision.encoder import to_pixels
from onevision.vision.images import decode_images
from onevision.world import load_world


@dataclass(frozen=True)
class Setting:
    name: str
    beam_width: int
    pruning: PruningConfig
    engine: str = "auto"  # the decoder engine: NumPy at batch 1, torch at batch 32 (decode.NUMPY_DECODER_MAX_ROWS)


FULL = Setting("full beam 50", 50, PruningConfig())
SETTINGS = (
    FULL,
    Setting("full beam 50, torch decoder only", 50, PruningConfig(), "torch"),
    Setting("served, torch decoder only", SERVING_BEAM_WIDTH, SERVING_PRUNING, "torch"),
    Setting("full beam 20", 20, PruningConfig()),
    Setting("tokens 12/16", 50, PruningConfig(keep_tokens=12)),
    Setting("token mass 0.9 (adaptive)", 50, PruningConfig(token_mass=0.9)),
    Setting("beam margin 6", 50, PruningConfig(beam_margin=6.0)),
    Setting("beam conf 0.99", 50, PruningConfig(confidence_mass=0.99, min_width=10)),
    Setting("full beam 50 + forced paths", 50, PruningConfig(forced_paths=True)),
    Setting("beam 50, margin 8 + conf 0.999 (served before forced paths)", 50,
            dataclasses.replace(SERVING_PRUNING, forced_paths=False)),
    Setting("served: beam 50, margin 8 + conf 0.999 + forced paths", SERVING_BEAM_WIDTH, SERVING_PRUNING),
    Setting("served, NumPy loop over compiled steps (before the fused search)", SERVING_BEAM_WIDTH, SERVING_PRUNING,
            "numba-loop"),
    Setting("full beam 50, NumPy loop over compiled steps", 50, PruningConfig(), "numba-loop"),
    Setting("served + token mass 0.9", SERVING_BEAM_WIDTH, dataclasses.replace(SERVING_PRUNING, token_mass=0.9)),
    Setting("beam 50, margin 6 + conf 0.99", 50, PruningConfig(beam_margin=6.0, confidence_mass=0.99, min_width=10)),
    Setting("beam 20, margin 6 + conf 0.99", 20, PruningConfig(beam_margin=6.0, confidence_mass=0.99, min_width=10)),
)


def latency_ms(fn, n: int, batch: int, repeats: int) -> float:
    """Median over repeats of the mean time per query, calling fn(start, stop) on batches of `batch`."""
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for s in range(0, n, batch):
            fn(s, min(s + batch, n))
        runs.append((time.perf_counter() - start) / n * 1000)
    return float(np.median(runs))


def matmul_gflops(size: int = 384, repeats: int = 30) -> float:
    """Single-thread fp32 GFLOP/s of a plain square matmul (the machine's arithmetic rate at these sizes)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def plot(rows: list[dict], cascade: dict, threads: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for r in rows:
        ax.scatter(r["b1"][threads], r["recall"], s=30)
        ax.annotate(r["name"], (r["b1"][threads], r["recall"]), fontsize=7, xytext=(4, 3), textcoords="offset points")
    ax.scatter(cascade["b1"][threads], cascade["recall"], marker="s", color="black", s=40)
    ax.annotate("cascade", (cascade["b1"][threads], cascade["recall"]), fontsize=8, xytext=(4, -10),
                textcoords="offset points")
    ax.set_xlabel(f"end-to-end ms per query, batch 1, {threads} thread(s)")
    ax.set_ylabel("recall@10 (test)")
    ax.set_title("Dynamic pruning: cost vs quality (generator settings and the cascade)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def _row(rows: list[dict], setting: Setting) -> dict:
    return next(r for r in rows if r["setting"] == setting)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", required=True)
    parser.add_argument("--generator-bundle", required=True)
    parser.add_argument("--cascade-bundle", required=True)
    parser.add_argument("--queries", type=int, default=800, help="test queries for quality")
    parser.add_argument("--latency-queries", type=int, default=64, help="queries timed per setting")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved timing rounds")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts to time")
    parser.add_argument("--plot", type=Path, default=None, help="write the cost/quality plot (SVG or PNG)")
    args = parser.parse_args()

    world = load_world(args.world)
    q = world.queries_of("test").iloc[: args.queries]
    images = decode_images(q["image"].tolist())
    users = q["user_id"].to_numpy()
    targets = q["target_item_id"].to_numpy()
    generator = load_retriever(args.generator_bundle)
    cascade = load_retriever(args.cascade_bundle)
    n_lat = min(args.latency_queries, len(q))
    torch.set_num_threads(1)
    gflops = matmul_gflops()

    def quality(retriever) -> tuple[float, float]:
        top = retriever.retrieve(images, users, 10).item_ids
        probs = world.behaviour.probabilities(users, targets, top)
        return recall_at_k(top, targets, 10), ctr_proxy(probs, top, 10)

    # the generator's own part (after the shared CNN): inputs prepared once, beam search timed alone
    bank = encode_bank(generator.encoder, to_pixels(images[:n_lat]))
    contexts = [generator.user_context(users[i : i + 1]) if generator.personalised else None for i in range(n_lat)]
    inputs = [make_input(bank, [i], contexts[i]) for i in range(n_lat)]
    batched = [make_input(bank, np.arange(s, min(s + 32, n_lat)),
                          generator.user_context(users[s:min(s + 32, n_lat)]) if generator.personalised else None)
               for s in range(0, n_lat, 32)]

    cas_recall, cas_ctr = quality(cascade)
    cas = {"name": "cascade", "recall": cas_recall, "ctr": cas_ctr}
    rows = []
    lists = {}  # each setting's top 10 of the timed queries, one at a time (batch 1: the engine "auto" picks)
    for setting in SETTINGS:
        generator.beam_width, generator.pruning, generator.engine = setting.beam_width, setting.pruning, setting.engine
        recall, ctr = quality(generator)
        with FlopCounterMode(display=False) as counter:  # counts torch's operations: the torch decoder's
            for inp in inputs[:16]:
                beam_search(generator.generator, inp, generator.vrq.trie, setting.beam_width, 10, setting.pruning,
                            engine="torch")
        lists[setting] = np.concatenate([beam_search(generator.generator, inp, generator.vrq.trie, setting.beam_width,
                                                     10, setting.pruning, engine=setting.engine).item_ids
                                         for inp in inputs])
        rows.append({"name": setting.name, "setting": setting, "recall": recall, "ctr": ctr,
                     "flops": counter.get_total_flops() / 16})

    # Timing in rounds: every arm is timed once per round, in the same order, so that machine noise (this is a
    # shared 2-core box) hits all arms of a round alike; ratios are medians of the per-round ratios.
    arms = [cas, *rows]
    for arm in arms:
        arm["rounds"] = []
    for _ in range(args.repeats):
        for arm in arms:
            setting = arm.get("setting")
            retriever = cascade if setting is None else generator
            if setting is not None:
                generator.beam_width, generator.pruning, generator.engine = (setting.beam_width, setting.pruning,
                                                                             setting.engine)
            sample = {}
            call = lambda s, e: retriever.retrieve(images[s:e], users[s:e], 10)  # noqa: E731
            for t in args.threads:
                torch.set_num_threads(t)
                sample[("b1", t)] = latency_ms(call, n_lat, 1, 1)
                sample[("b32", t)] = latency_ms(call, n_lat, 32, 1)
            torch.set_num_threads(1)
            if setting is not None:
                sample["decode"] = latency_ms(lambda s, e: beam_search(
                    generator.generator, inputs[s], generator.vrq.trie, setting.beam_width, 10, setting.pruning,
                    engine=setting.engine),
                    n_lat, 1, 1)
                sample["decode32"] = latency_ms(lambda s, e: beam_search(
                    generator.generator, batched[s // 32], generator.vrq.trie, setting.beam_width, 10,
                    setting.pruning, engine=setting.engine),
                    n_lat, 32, 1)
            arm["rounds"].append(sample)
    full = rows[0]

    def value(arm: dict, key) -> float:
        return float(np.median([r[key] for r in arm["rounds"]]))

    def ratio(arm: dict, other: dict, key) -> float:
        return float(np.median([a[key] / b[key] for a, b in zip(arm["rounds"], other["rounds"])]))

    for arm in arms:
        arm["b1"] = {t: value(arm, ("b1", t)) for t in args.threads}
        arm["b32"] = {t: value(arm, ("b32", t)) for t in args.threads}
        if "setting" in arm:
            arm["decode"] = value(arm, "decode")
            arm["decode32"] = value(arm, "decode32")

    print(f"{len(q)} test queries for quality, {n_lat} timed, {args.repeats} interleaved rounds (medians; ratios are "
          f"medians of per-round ratios); plain matmul {gflops:.1f} GFLOP/s on one thread\n")
    head = ["setting", "recall@10", "Δ recall (pts)", "CTR@10", "gen. MFLOPs/query", "FLOP floor ms", "decode ms b=1",
            "decode / floor", "decode ms b=32"]
    for t in args.threads:
        head += [f"ms b=1 ({t}t)", "b=1 vs full", "b=1 vs cascade", f"ms b=32 ({t}t)", "b=32 vs full", "b=32 vs cascade"]
    print("| " + " | ".join(head) + " |")
    print("|---" * len(head) + "|")
    for arm in arms:
        if arm is cas:
            cells = ["cascade", f"{cas['recall']:.3f}", f"{100 * (cas['recall'] - full['recall']):+.1f}",
                     f"{cas['ctr']:.4f}", "—", "—", "—", "—", "—"]
        else:
            floor = arm["flops"] / (gflops * 1e9) * 1000
            cells = [f"generator: {arm['name']}", f"{arm['recall']:.3f}", f"{100 * (arm['recall'] - full['recall']):+.1f}",
                     f"{arm['ctr']:.4f}", f"{arm['flops'] / 1e6:.1f}", f"{floor:.3f}", f"{arm['decode']:.2f}",
                     f"{arm['decode'] / floor:.1f}", f"{arm['decode32']:.2f}"]
        for t in args.threads:
            cells += [f"{arm['b1'][t]:.2f}", f"{ratio(arm, full, ('b1', t)):.2f}", f"{ratio(arm, cas, ('b1', t)):.2f}",
                      f"{arm['b32'][t]:.2f}", f"{ratio(arm, full, ('b32', t)):.2f}", f"{ratio(arm, cas, ('b32', t)):.2f}"]
        print("| " + " | ".join(cells) + " |")
    served = next(r for r in rows if r["name"].startswith("served:"))
    for t in args.threads:
        print(f"\nserved default, {t} thread(s): wall-clock gain over full beam "
              f"{1 - ratio(served, full, ('b1', t)):+.0%} at batch 1, {1 - ratio(served, full, ('b32', t)):+.0%} at "
              f"batch 32; recall@10 {100 * (served['recall'] - full['recall']):+.1f} pts")
    print(f"\nserved default, decode alone (after the shared CNN, one thread): gain over full beam "
          f"{1 - ratio(served, full, 'decode'):+.0%} at batch 1, {1 - ratio(served, full, 'decode32'):+.0%} at batch 32")
    served_setting = served["setting"]
    by_name = {setting.name: setting for setting in SETTINGS}
    for fast, slow, what in (
            (FULL, SETTINGS[1], "compiled decoder vs torch decoder"),
            (served_setting, SETTINGS[2], "compiled decoder vs torch decoder"),
            (served_setting, by_name["served, NumPy loop over compiled steps (before the fused search)"],
             "fused search vs NumPy loop"),
            (FULL, by_name["full beam 50, NumPy loop over compiled steps"], "fused search vs NumPy loop")):
        same = (lists[fast] == lists[slow]).all(1)
        print(f"\n{fast.name}: {what} at batch 1: {int(same.sum())}/{len(same)} identical top-10 "
              f"lists; decode ×{ratio(_row(rows, fast), _row(rows, slow), 'decode'):.2f}, end to end "
              + ", ".join(f"×{ratio(_row(rows, fast), _row(rows, slow), ('b1', t)):.2f} ({t}t)" for t in args.threads))
    if args.plot:
        plot(rows, cas, args.threads[0], args.plot)
        print(f"\nplot: {args.plot}")


if __name__ == "__main__":
    main()
