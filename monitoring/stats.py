"""Two-proportion comparison of a canary against a control: pooled z-test, Wald interval of the
difference and delta-method interval of the relative lift (on the log of the rate ratio)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist


@dataclass(frozen=True)
class ProportionComparison:
    control_successes: int
    control_n: int
    canary_successes: int
    canary_n: int
    control_rate: float
    canary_rate: float
    abs_diff: float  # canary - control
    abs_ci: tuple[float, float]
    rel_lift: float  # canary / control - 1 (NaN when the control rate is 0)
    rel_ci: tuple[float, float]
    z: float
    p_value: float  # two-sided
    confidence: float

    def significant(self, alpha: float) -> bool:
        return self.p_value < alpha

    def to_dict(self) -> dict:
        d = asdict(self)
        d["abs_ci"], d["rel_ci"] = list(self.abs_ci), list(self.rel_ci)
        return d


def _check(successes: int, n: int, label: str) -> None:
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"{label}: expected 0 <= successes <= n and n >= 1, got successes={successes}, n={n}")


def compare_proportions(
    control_successes: int, control_n: int, canary_successes: int, canary_n: int, confidence: float = 0.95
) -> ProportionComparison:
    _check(control_successes, control_n, "control")
    _check(canary_successes, canary_n, "canary")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    p0, p1 = control_successes / control_n, canary_successes / canary_n
    q = NormalDist().inv_cdf(0.5 + confidence / 2)

    pooled = (control_successes + canary_successes) / (control_n + canary_n)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / control_n + 1 / canary_n))
    if se_pooled > 0:
        z = (p1 - p0) / se_pooled
        p_value = 2 * (1 - NormalDist().cdf(abs(z)))
    else:  # both arms all-0 or all-1: no evidence of a difference
        z, p_value = 0.0, 1.0

    diff = p1 - p0
    se_diff = math.sqrt(p0 * (1 - p0) / control_n + p1 * (1 - p1) / canary_n)
    abs_ci = (diff - q * se_diff, diff + q * se_diff)

    if p0 > 0 and p1 > 0:
        # Var(log p) ~= (1 - p) / (n p); the interval of log(p1/p0) maps back to a lift interval.
        log_ratio = math.log(p1 / p0)
        se_log = math.sqrt((1 - p0) / (control_n * p0) + (1 - p1) / (canary_n * p1))
        rel_lift = p1 / p0 - 1
        rel_ci = (math.exp(log_ratio - q * se_log) - 1, math.exp(log_ratio + q * se_log) - 1)
    elif p0 > 0:  # canary rate 0: lift -100%, interval from the difference
        rel_lift = -1.0
        rel_ci = (-1.0, abs_ci[1] / p0)
    else:
        rel_lift, rel_ci = math.nan, (math.nan, math.nan)
    return ProportionComparison(
        control_successes=int(control_successes), control_n=int(control_n),
        canary_successes=int(canary_successes), canary_n=int(canary_n),
        control_rate=p0, canary_rate=p1, abs_diff=diff, abs_ci=abs_ci, rel_lift=rel_lift, rel_ci=rel_ci,
        z=z, p_value=p_value, confidence=confidence,
    )
