"""The lift of a request-level rate (CTR, CVR) of the canary over the control, with the user as the unit.

Traffic is split by user (monitoring/split.py), so one user's requests are not independent draws: each arm's
rate R = sum_i s_i / sum_i n_i over users i (s_i successes in n_i requests) is a ratio metric, and its variance
comes from the delta method with users as the independent units (Deng, Knoblich & Lu 2018):
    Var(R) = sum_i (s_i - R n_i)^2 / (sum_i n_i)^2.
The effect is the log rate ratio theta = log(R_canary / R_control), Var(theta) = V_1 / R_1^2 + V_0 / R_0^2; the
relative lift is exp(theta) - 1. With one request per user this is the textbook delta-method interval of a
ratio of two proportions.

CUPED (Deng, Xu, Kohavi & Walker 2013): with x_i the user's rate in a pre-period, s_i' = s_i - beta n_i (x_i - x),
beta pooled over both arms to minimise the residual variance; users without a pre-period keep s_i.

One effect estimate, two ways to read it, each giving a p-value and an interval of the same method (so p < alpha
exactly when the interval excludes 0):
  fixed       the z-test and Wald interval at level 1 - alpha, valid when read once, at a horizon fixed in advance.
  sequential  the mixture SPRT with a N(0, tau^2) mixing distribution over theta (Johari, Koomen, Pekelis & Walsh
              2017, "Peeking at A/B tests"; Robbins 1970), read at every look:
                  Lambda = sqrt(V / (V + tau^2)) exp(theta^2 tau^2 / (2 V (V + tau^2)))
              always-valid p = min(1, 1 / max over looks of Lambda); the confidence sequence is the running
              intersection of theta +- sqrt(V (V + tau^2) / tau^2 (2 log(1/alpha) + log((V + tau^2) / V))).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np

Method = Literal["fixed", "sequential"]


@dataclass(frozen=True)
class UserTotals:
    """One arm's requests and successes per user, and each user's pre-period rate (NaN: no pre-period)."""

    requests: np.ndarray
    successes: np.ndarray
    covariate: np.ndarray | None = None

    def __post_init__(self) -> None:
        if len(self.requests) != len(self.successes) or (self.covariate is not None and len(self.covariate) != len(self.requests)):
            raise ValueError("requests, successes and covariate must have one value per user")
        if np.any(self.requests < 1) or np.any(self.successes < 0) or np.any(self.successes > self.requests):
            raise ValueError("every user needs >= 1 request and 0 <= successes <= requests")

    @property
    def n(self) -> int:
        return int(self.requests.sum())


@dataclass(frozen=True)
class Cuped:
    applied: bool
    beta: float | None
    variance_reduction: float | None  # 1 - Var(adjusted) / Var(unadjusted) of the log rate ratio
    covered_users: float  # share of users with a pre-period rate
    reason: str | None = None  # why it was not applied


@dataclass(frozen=True)
class Effect:
    """theta = log(canary rate / control rate) and its variance, after CUPED when applied."""

    control_rate: float  # observed (unadjusted) rates
    canary_rate: float
    control_n: int
    canary_n: int
    control_users: int
    canary_users: int
    theta: float | None  # None when a rate is 0: no log ratio yet
    variance: float | None
    cuped: Cuped

    @property
    def rel_lift(self) -> float | None:
        return None if self.theta is None else math.expm1(self.theta)


@dataclass(frozen=True)
class Inference:
    method: Method
    p_value: float
    ci: tuple[float, float] | None  # of the relative lift, at level 1 - alpha
    alpha: float

    @property
    def significant(self) -> bool:
        return self.p_value < self.alpha


def _ratio_and_variance(requests: np.ndarray, successes: np.ndarray) -> tuple[float, float]:
    total = requests.sum()
    rate = successes.sum() / total
    return float(rate), float(((successes - rate * requests) ** 2).sum() / total**2)


def _log_ratio(control: tuple[float, float], canary: tuple[float, float]) -> tuple[float | None, float | None]:
    (r0, v0), (r1, v1) = control, canary
    if r0 <= 0 or r1 <= 0:
        return None, None
    return math.log(r1 / r0), v1 / r1**2 + v0 / r0**2


def estimate_effect(control: UserTotals, canary: UserTotals, cuped: bool = True) -> Effect:
    if len(control.requests) == 0 or len(canary.requests) == 0:
        raise ValueError("both arms need at least one user")
    raw = [_ratio_and_variance(arm.requests, arm.successes) for arm in (control, canary)]
    theta, variance = _log_ratio(*raw)
    base = dict(control_rate=raw[0][0], canary_rate=raw[1][0], control_n=control.n, canary_n=canary.n,
                control_users=len(control.requests), canary_users=len(canary.requests))
    adjustment = _cuped(control, canary, raw, variance) if cuped else None
    if adjustment is None:
        reason = "disabled" if not cuped else "no pre-period rate for any user" if control.covariate is None or canary.covariate is None else None
        covered = _covered_share(control, canary)
        note = Cuped(False, None, None, covered, reason or "no usable covariate (no variance, or an adjusted rate <= 0)")
        return Effect(**base, theta=theta, variance=variance, cuped=note)
    adjusted_theta, adjusted_variance, beta = adjustment
    reduction = None if not variance else 1 - adjusted_variance / variance
    return Effect(**base, theta=adjusted_theta,
                  variance=adjusted_variance, cuped=Cuped(True, beta, reduction, _covered_share(control, canary)))


def _covered_share(control: UserTotals, canary: UserTotals) -> float:
    if control.covariate is None or canary.covariate is None:
        return 0.0
    covered = np.isfinite(control.covariate).sum() + np.isfinite(canary.covariate).sum()
    return float(covered / (len(control.covariate) + len(canary.covariate)))


def _cuped(control: UserTotals, canary: UserTotals, raw: list[tuple[float, float]], variance: float | None):
    if control.covariate is None or canary.covariate is None or variance is None:
        return None
    arms = (control, canary)
    known = [np.isfinite(arm.covariate) for arm in arms]
    weight = sum(arm.requests[k].sum() for arm, k in zip(arms, known))
    if weight == 0:
        return None
    centre = sum((arm.requests[k] * arm.covariate[k]).sum() for arm, k in zip(arms, known)) / weight
    terms = [np.where(k, arm.requests * (np.nan_to_num(arm.covariate) - centre), 0.0) for arm, k in zip(arms, known)]
    residuals = [arm.successes - rate * arm.requests for arm, (rate, _) in zip(arms, raw)]
    denominator = sum((t**2).sum() for t in terms)
    if denominator <= 0:
        return None
    beta = float(sum((r * t).sum() for r, t in zip(residuals, terms)) / denominator)
    adjusted = [_ratio_and_variance(arm.requests, arm.successes - beta * t) for arm, t in zip(arms, terms)]
    theta, adjusted_variance = _log_ratio(*adjusted)
    if theta is None:
        return None
    return theta, adjusted_variance, beta


def _lift_interval(low: float, high: float) -> tuple[float, float]:
    return math.expm1(low), math.expm1(high)


def fixed_inference(effect: Effect, alpha: float) -> Inference:
    if effect.theta is None or not effect.variance:
        return Inference("fixed", 1.0, None, alpha)
    se = math.sqrt(effect.variance)
    z = effect.theta / se
    q = NormalDist().inv_cdf(1 - alpha / 2)
    p = 2 * (1 - NormalDist().cdf(abs(z)))
    return Inference("fixed", p, _lift_interval(effect.theta - q * se, effect.theta + q * se), alpha)


def msprt_likelihood_ratio(theta: float, variance: float, tau: float) -> float:
    """Lambda of the normal-mixture SPRT for an asymptotically normal estimate theta with the given variance."""
    total = variance + tau**2
    return math.sqrt(variance / total) * math.exp(min(theta**2 * tau**2 / (2 * variance * total), 700.0))


def msprt_half_width(variance: float, tau: float, alpha: float) -> float:
    total = variance + tau**2
    return math.sqrt(variance * total / tau**2 * (2 * math.log(1 / alpha) + math.log(total / variance)))


def sequential_inference(looks: Sequence[Effect], alpha: float, tau: float) -> Inference:
    """The always-valid p-value and confidence sequence after the given looks (in time order)."""
    if tau <= 0:
        raise ValueError(f"tau (the mixing standard deviation) must be > 0, got {tau}")
    p_value, low, high = 1.0, -math.inf, math.inf
    for look in looks:
        if look.theta is None or not look.variance:
            continue
        p_value = min(p_value, 1 / msprt_likelihood_ratio(look.theta, look.variance, tau))
        half = msprt_half_width(look.variance, tau, alpha)
        low, high = max(low, look.theta - half), min(high, look.theta + half)
    if not math.isfinite(low):
        return Inference("sequential", 1.0, None, alpha)
    if low > high:  # the sequence emptied (its level was exceeded by chance): report the latest interval
        last = next(look for look in reversed(looks) if look.theta is not None and look.variance)
        half = msprt_half_width(last.variance, tau, alpha)
        low, high = last.theta - half, last.theta + half
    return Inference("sequential", min(1.0, p_value), _lift_interval(low, high), alpha)


def infer(looks: Sequence[Effect], method: Method, alpha: float, tau: float) -> Inference:
    """`fixed` reads the last look only; `sequential` every look."""
    if not looks:
        raise ValueError("no look to infer from")
    return fixed_inference(looks[-1], alpha) if method == "fixed" else sequential_inference(looks, alpha, tau)
