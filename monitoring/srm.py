"""Sample-ratio mismatch: do the arms hold the share of randomisation units (users) the split promised?

Two tests on counts of distinct users per arm:
  chi-square   scipy's goodness-of-fit test of the cumulative counts against the expected shares; valid once.
  sequential   the Dirichlet-multinomial Bayes-factor test of Lindon & Malek (2020, "Anytime-valid inference
               for multinomial count data"; Optimizely's `ssrm-test`, whose numpy<2 pin keeps it out of this
               environment): BF = [B(a + n) / B(a)] / prod_j p_j^n_j for cumulative counts n, prior
               Dirichlet(a = concentration * p); the always-valid p-value is min(1, 1 / max BF over looks), so
               it may be read at every window. Tested against ssrm-test 0.1.5's values.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DEFAULT_CONCENTRATION = 10_000.0  # ssrm-test's default: the prior mean is the expected split, tightly held


def _checked(counts: Sequence[float], shares: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    n, p = np.asarray(counts, dtype=np.float64), np.asarray(shares, dtype=np.float64)
    if n.shape != p.shape or n.ndim != 1 or len(n) < 2:
        raise ValueError(f"counts {list(n)} and expected shares {list(p)} need one value per arm (at least two)")
    if np.any(p <= 0) or not np.isclose(p.sum(), 1.0):
        raise ValueError(f"expected shares must be > 0 and sum to 1, got {list(p)}")
    if np.any(n < 0):
        raise ValueError(f"counts must be >= 0, got {list(n)}")
    return n, p


def chi_square_p_value(counts: Sequence[float], shares: Sequence[float]) -> float:
    from scipy.stats import chisquare

    n, p = _checked(counts, shares)
    if n.sum() == 0:
        return 1.0
    return float(chisquare(n, n.sum() * p).pvalue)


def log_bayes_factor(counts: Sequence[float], shares: Sequence[float], concentration: float = DEFAULT_CONCENTRATION) -> float:
    from scipy.special import gammaln

    n, p = _checked(counts, shares)
    a = concentration * p
    log_m1 = gammaln(a.sum()) - gammaln(a).sum() + gammaln(a + n).sum() - gammaln((a + n).sum())
    log_m0 = float((n * np.log(p)).sum())
    return float(log_m1 - log_m0)


def sequential_p_values(cumulative_counts: Sequence[Sequence[float]], shares: Sequence[float],
                        concentration: float = DEFAULT_CONCENTRATION) -> list[float]:
    """The always-valid p-value after each look; `cumulative_counts[t]` are the counts up to look t."""
    p_values, smallest = [], 1.0
    for counts in cumulative_counts:
        smallest = min(smallest, float(np.exp(-min(log_bayes_factor(counts, shares, concentration), 700.0))))
        p_values.append(smallest)
    return p_values
