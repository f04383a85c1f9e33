"""Proof by simulation of the canary decision procedure (monitoring/stats.py, monitoring/srm.py).

Simulated experiments, users as the unit as in a sticky split: each user has their own click rate
(Beta, mean `--ctr`, concentration `--kappa`) and request rate (Gamma, mean `--requests-per-day`), a
control-only pre-period of `--pre-days` days (CUPED's covariate: the user's pre-period CTR), then `--days`
windows of canary traffic, each a look at the cumulative data.

  (a) A/A: the family-wise false-positive rate over all looks of the naive repeated z-test and of the
      sequential test (mixture SPRT), with and without CUPED;
  (b) a true relative CTR lift (`--lift`, default +2%) at 10% and 50% canary: power by the last look and
      median days to a decision, sequential test, with and without CUPED, and CUPED's variance reduction;
  (c) SRM: detection rate of a 10% vs 9% split bug, and the false-alarm rate of a correct split when the
      split is checked at every window, for the naive repeated chi-square and the sequential test.

    python bench/ab_decisions.py                      # the README table (about 10 minutes on 2 cores)
    python bench/ab_decisions.py --aa-runs 100 --power-runs 40 --users 20000   # a quick look
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitoring.rules import load_rules  # noqa: E402
from monitoring.srm import chi_square_p_value, sequential_p_values  # noqa: E402
from monitoring.stats import UserTotals, estimate_effect, fixed_inference, sequential_inference  # noqa: E402


@dataclass(frozen=True)
class World:
    users: int = 50_000
    ctr: float = 0.12
    kappa: float = 6.0  # Beta concentration of the users' click rates: lower = more heterogeneous users
    requests_per_day: float = 10.0  # 500,000 requests a day with the default users
    pre_days: int = 7
    days: int = 20


@dataclass
class Outcome:
    naive_reject: bool
    sequential_reject: bool
    sequential_day: int | None  # first look (1-based) with a significant sequential result
    variance_reduction: float | None


def simulate(world: World, canary_share: float, lift: float, alpha: float, tau: float,
             seed: list[int]) -> dict[bool, Outcome]:
    """One experiment, analysed without and with CUPED (keys False, True) on the same simulated data."""
    rng = np.random.default_rng(seed)
    rate = rng.beta(world.ctr * world.kappa, (1 - world.ctr) * world.kappa, size=world.users)
    activity = rng.gamma(1.0, world.requests_per_day, size=world.users)
    pre_n = rng.poisson(activity * world.pre_days)
    pre_s = rng.binomial(pre_n, rate)
    covariate = np.where(pre_n > 0, pre_s / np.maximum(pre_n, 1), np.nan)
    canary = rng.random(world.users) < canary_share
    true_rate = np.where(canary, np.minimum(rate * (1 + lift), 1.0), rate)
    n = rng.poisson(np.repeat(activity[:, None], world.days, axis=1))
    s = rng.binomial(n, true_rate[:, None])
    n_cum, s_cum = n.cumsum(axis=1), s.cumsum(axis=1)
    outcomes = {}
    for cuped in (False, True):
        looks, naive, first_day, reduction = [], False, None, None
        for day in range(world.days):
            active = n_cum[:, day] > 0
            arms = [active & ~canary, active & canary]
            totals = [UserTotals(n_cum[m, day], s_cum[m, day].astype(np.float64), covariate[m] if cuped else None)
                      for m in arms]
            effect = estimate_effect(*totals, cuped=cuped)
            looks.append(effect)
            naive |= fixed_inference(effect, alpha).significant
            if first_day is None and sequential_inference(looks, alpha, tau).significant:
                first_day = day + 1
            reduction = effect.cuped.variance_reduction
        outcomes[cuped] = Outcome(naive, first_day is not None, first_day, reduction)
    return outcomes


def srm_run(world: World, expected: float, actual: float, alpha: float, concentration: float,
            seed: list[int]) -> tuple[bool, bool, int | None]:
    """(naive repeated chi-square flagged at some look, sequential flagged by the end, first sequential day)."""
    rng = np.random.default_rng(seed)
    activity = rng.gamma(1.0, world.requests_per_day, size=world.users)
    first_seen = np.argmax(rng.poisson(np.repeat(activity[:, None], world.days, axis=1)) > 0, axis=1)
    ever = rng.random(world.users) < 1 - np.exp(-activity * world.days)  # active at least once in the experiment
    canary = rng.random(world.users) < actual
    counts = []
    for day in range(world.days):
        seen = ever & (first_seen <= day)
        counts.append([int((seen & ~canary).sum()), int((seen & canary).sum())])
    shares = [1 - expected, expected]
    naive = any(chi_square_p_value(c, shares) < alpha for c in counts)
    p = sequential_p_values(counts, shares, concentration)
    first = next((i + 1 for i, v in enumerate(p) if v < alpha), None)
    return naive, first is not None, first


class InlineExecutor:
    """`--workers 1`: the same jobs in this process."""

    def submit(self, fn, *args) -> Future:
        future: Future = Future()
        future.set_result(fn(*args))
        return future

    def shutdown(self) -> None:
        pass


def median_day(days: list[int | None], horizon: int) -> str:
    values = sorted(d if d is not None else math.inf for d in days)
    middle = values[len(values) // 2]
    return f"> {horizon}" if math.isinf(middle) else str(int(middle))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--aa-runs", type=int, default=1000)
    parser.add_argument("--power-runs", type=int, default=200)
    parser.add_argument("--srm-runs", type=int, default=1000)
    parser.add_argument("--users", type=int, default=World.users)
    parser.add_argument("--ctr", type=float, default=World.ctr)
    parser.add_argument("--kappa", type=float, default=World.kappa)
    parser.add_argument("--requests-per-day", type=float, default=World.requests_per_day)
    parser.add_argument("--days", type=int, default=World.days)
    parser.add_argument("--pre-days", type=int, default=World.pre_days)
    parser.add_argument("--lift", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="Processes (default: one per core).")
    parser.add_argument("--json", type=Path, help="Also write the figures as JSON.")
    args = parser.parse_args(argv)
    rules = load_rules().comparison  # the shipped defaults: alpha, tau, SRM alpha and prior
    alpha, tau = rules.alpha, rules.tau
    world = World(args.users, args.ctr, args.kappa, args.requests_per_day, args.pre_days, args.days)
    began = time.perf_counter()
    print(f"world: {asdict(world)} ({world.users * world.requests_per_day:,.0f} requests a day); alpha={alpha}, "
          f"tau={tau}, SRM alpha={rules.srm.alpha}; {args.workers} worker processes")
    results: dict = {"world": asdict(world), "alpha": alpha, "tau": tau, "srm_alpha": rules.srm.alpha}
    pool = ProcessPoolExecutor(args.workers) if args.workers > 1 else InlineExecutor()

    def experiments(kind: int, share: float, lift: float, runs: int) -> list[dict[bool, Outcome]]:
        jobs = [pool.submit(simulate, world, share, lift, alpha, tau, [args.seed, kind, i]) for i in range(runs)]
        return [job.result() for job in tqdm(jobs, desc=f"{share:.0%} canary, lift {lift:+.0%}", leave=False)]

    print(f"\n(a) A/A, 10% canary, {args.aa_runs} runs x {world.days} looks: share of runs with a false positive")
    print("| test | without CUPED | with CUPED |\n|---|---|---|")
    runs = experiments(0, 0.10, 0.0, args.aa_runs)
    aa = {cuped: {"naive": float(np.mean([r[cuped].naive_reject for r in runs])),
                  "sequential": float(np.mean([r[cuped].sequential_reject for r in runs]))} for cuped in (False, True)}
    se = math.sqrt(alpha * (1 - alpha) / args.aa_runs)
    for test in ("naive", "sequential"):
        label = "naive z-test at every look" if test == "naive" else "sequential (mSPRT), every look"
        print(f"| {label} | {aa[False][test]:.3f} | {aa[True][test]:.3f} |")
    print(f"(alpha = {alpha}; one standard error of a rate at alpha over {args.aa_runs} runs: {se:.3f})")
    results["aa"] = {("cuped" if k else "plain"): v for k, v in aa.items()}

    print(f"\n(b) true CTR lift {args.lift:+.0%}, sequential test, {args.power_runs} runs: power by day {world.days}, "
          "median days to decision, CUPED's variance reduction")
    print("| canary | CUPED | power | median days | variance reduction |\n|---|---|---|---|---|")
    power = []
    for kind, share in ((1, 0.10), (2, 0.50)):
        runs = experiments(kind, share, args.lift, args.power_runs)
        for cuped in (False, True):
            row = {"canary": share, "cuped": cuped, "power": float(np.mean([r[cuped].sequential_reject for r in runs])),
                   "median_days": median_day([r[cuped].sequential_day for r in runs], world.days),
                   "variance_reduction": float(np.mean([r[cuped].variance_reduction for r in runs])) if cuped else None}
            power.append(row)
            reduction = f"{row['variance_reduction']:.0%}" if cuped else "-"
            print(f"| {share:.0%} | {'yes' if cuped else 'no'} | {row['power']:.2f} | {row['median_days']} | {reduction} |")
    results["power"] = power

    print(f"\n(c) SRM, expected 10% canary, checked at every one of {world.days} windows, {args.srm_runs} runs")
    print("| split | naive chi-square at every look | sequential | median days (sequential) |\n|---|---|---|---|")
    srm = {}
    for kind, (label, actual) in ((3, ("correct 10%", 0.10)), (4, ("bug: 9%", 0.09))):
        jobs = [pool.submit(srm_run, world, 0.10, actual, rules.srm.alpha, rules.srm.concentration, [args.seed, kind, i])
                for i in range(args.srm_runs)]
        runs = [job.result() for job in jobs]
        srm[label] = {"naive": float(np.mean([r[0] for r in runs])), "sequential": float(np.mean([r[1] for r in runs])),
                      "median_days": median_day([r[2] for r in runs], world.days)}
        print(f"| {label} | {srm[label]['naive']:.3f} | {srm[label]['sequential']:.3f} | {srm[label]['median_days']} |")
    results["srm"] = srm
    pool.shutdown()
    print(f"\n{time.perf_counter() - began:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
