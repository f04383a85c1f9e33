"""Benchmark: how decoding and ANN recall grow with the catalogue, on synthetic tables, in one run.

For each catalogue size: random SIDs (3 levels x 256 codes drawn with a skewed, realistic branching, plus
the disambiguation token), the trie's build time and memory, the time of one beam step's mask/transition
lookup for 20 beams at each level, and the generator's decode time per query (the default architecture
with random weights: cost does not depend on the weights); against the cascade's ANN over random 128-d
unit vectors: faiss Flat (exact) and IVF-Flat (nlist = 4 sqrt(N) up to 4096, nprobe 16, trained on at most
100k vectors), build time, memory and
search time per query at batch 1. One torch/faiss thread.

    python bench/catalogue_scale.py --sizes 10000 100000 1000000 10000000

Writes the table to stdout and, with --out, to a Markdown file.
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch

from onevision.generator.decode import SERVING_BEAM_WIDTH, SERVING_PRUNING, beam_search
from onevision.generator.model import GeneratorConfig, GeneratorInput, SidGenerator
from onevision.vrq.sid import SidTrie, assign_sids

CODES = (256, 256, 256)
DIM = 128


def synthetic_codes(n: int, rng: np.random.Generator) -> np.ndarray:
    """Level 0 Zipf-like over 256 codes (popular categories); deeper levels drawn from a per-parent subset
    whose size grows with the catalogue, as residual codebooks do."""
    p0 = 1.0 / np.arange(1, CODES[0] + 1) ** 0.6
    l0 = rng.choice(CODES[0], size=n, p=p0 / p0.sum())
    fan = int(np.clip(n / CODES[0] / 4, 8, CODES[1]))  # distinct children a parent uses
    l1 = (l0 * 37 + rng.integers(0, fan, n)) % CODES[1]
    l2 = rng.integers(0, CODES[2], n)
    return np.stack([l0, l1, l2], 1)


def timed(fn, repeats: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats * 1000


def trie_row(n: int, queries: int, rng: np.random.Generator) -> dict:
    codes = synthetic_codes(n, rng)
    start = time.perf_counter()
    sem = assign_sids(np.arange(n, dtype=np.int64), codes)
    trie = SidTrie.build(sem, sem.vocab_sizes(CODES))
    for level in range(trie.depth):
        trie.transitions(level)  # what loading does on first use
    build_s = time.perf_counter() - start
    csr = sum(a.nbytes for arrs in (trie.start, trie.child_token, trie.child_node) for a in arrs) + trie.leaf_item.nbytes
    dense = sum(t.numel() * t.element_size() for t in (trie.transitions(i) for i in range(trie.depth)) if t is not None)
    step_ms = []
    nodes = torch.zeros(20, dtype=torch.long)
    for level in range(trie.depth):
        step_ms.append(timed(lambda: trie.next_nodes(level, nodes), 20))
        nxt = trie.next_nodes(level, nodes)
        valid = torch.nonzero(nxt >= 0)
        pick = valid[torch.from_numpy(rng.integers(0, len(valid), 20))]
        nodes = nxt[pick[:, 0], pick[:, 1]]
    torch.manual_seed(0)
    model = SidGenerator(GeneratorConfig(vocab_sizes=trie.vocab_sizes, d_model=96, encoder_layers=1, dropout=0.0)).eval()
    inputs = [GeneratorInput(torch.randn(1, 16, 128), torch.randn(1, 128), torch.rand(1, 16)) for _ in range(queries)]
    it = iter(range(10**9))
    decode_ms = timed(lambda: beam_search(model, inputs[next(it) % queries], trie, SERVING_BEAM_WIDTH, 10, SERVING_PRUNING), queries)
    return {"trie_build_s": build_s, "trie_mb": (csr + dense) / 2**20, "disamb_vocab": trie.vocab_sizes[-1],
            "step_ms": step_ms, "decode_ms": decode_ms}


def ann_rows(n: int, queries: int, rng: np.random.Generator, flat_max: int) -> dict:
    import faiss

    faiss.omp_set_num_threads(1)
    x = rng.standard_normal((n, DIM), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = rng.standard_normal((queries, DIM), dtype=np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    out = {}
    if n <= flat_max:
        start = time.perf_counter()
        flat = faiss.IndexFlatIP(DIM)
        flat.add(x)
        out["flat"] = (time.perf_counter() - start, x.nbytes / 2**20,
                       timed(lambda: [flat.search(q[i : i + 1], 200) for i in range(queries)], 1) / queries)
    nlist = min(int(4 * math.sqrt(n)), 4096)
    start = time.perf_counter()
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(DIM), DIM, nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.train(x[rng.choice(n, size=min(n, 40 * nlist, 100_000), replace=False)])
    ivf.add(x)
    ivf.nprobe = 16
    out["ivf"] = (time.perf_counter() - start, (x.nbytes + nlist * DIM * 4) / 2**20,
                  timed(lambda: [ivf.search(q[i : i + 1], 200) for i in range(queries)], 1) / queries)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000, 10_000_000])
    ap.add_argument("--queries", type=int, default=32)
    ap.add_argument("--flat-max", type=int, default=1_000_000, help="largest catalogue for the exact Flat index")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    lines = ["| items | trie build s | trie MiB | disamb. vocab | beam step ms (L0/L1/L2/L3) | generator decode ms | "
             "Flat build s / MiB / ms | IVF build s / MiB / ms | decode vs Flat | decode vs IVF |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for n in args.sizes:
        print(f"{n:,} items ...", flush=True)
        t = trie_row(n, args.queries, rng)
        a = ann_rows(n, args.queries, rng, args.flat_max)
        cell = lambda r: "—" if r is None else f"{r[0]:.1f} / {r[1]:.0f} / {r[2]:.2f}"  # noqa: E731
        ratio = lambda r: "—" if r is None else f"{t['decode_ms'] / r[2]:.2f}"  # noqa: E731
        lines.append(f"| {n:,} | {t['trie_build_s']:.2f} | {t['trie_mb']:.1f} | {t['disamb_vocab']} | "
                     + "/".join(f"{s:.3f}" for s in t["step_ms"]) + f" | {t['decode_ms']:.2f} | {cell(a.get('flat'))} | "
                     f"{cell(a.get('ivf'))} | {ratio(a.get('flat'))} | {ratio(a.get('ivf'))} |")
        print(lines[-1], flush=True)
    table = "\n".join(lines)
    print("\n" + table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
