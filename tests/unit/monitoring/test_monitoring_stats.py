"""The lift estimate (users as the unit, delta method), CUPED, and the fixed and sequential readings of it."""
from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from monitoring.stats import (
    UserTotals,
    estimate_effect,
    fixed_inference,
    msprt_half_width,
    msprt_likelihood_ratio,
    sequential_inference,
)


def one_request_each(successes: int, n: int) -> UserTotals:
    return UserTotals(np.ones(n, np.int64), np.r_[np.ones(successes), np.zeros(n - successes)])


def test_with_one_request_per_user_it_is_the_delta_method_interval_of_the_ratio_of_proportions() -> None:
    effect = estimate_effect(one_request_each(200, 1000), one_request_each(260, 1000))
    se = math.sqrt(0.8 / (1000 * 0.2) + 0.74 / (1000 * 0.26))
    assert effect.theta == pytest.approx(math.log(1.3)) and effect.variance == pytest.approx(se**2)
    inference = fixed_inference(effect, 0.05)
    assert inference.ci == pytest.approx((math.exp(math.log(1.3) - 1.959964 * se) - 1,
                                          math.exp(math.log(1.3) + 1.959964 * se) - 1), abs=1e-5)
    assert inference.p_value == pytest.approx(2 * (1 - NormalDist().cdf(math.log(1.3) / se)))


def test_clustered_users_widen_the_interval() -> None:
    """The same 10,000 requests from 100 users with their own rates are worth less than from 10,000 users."""
    rng = np.random.default_rng(0)
    rates = rng.beta(1, 4, size=100)
    heavy = UserTotals(np.full(100, 100), rng.binomial(100, rates).astype(float))
    light = one_request_each(int(heavy.successes.sum()), 10_000)
    assert estimate_effect(heavy, heavy).variance > 5 * estimate_effect(light, light).variance


@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.2])
@pytest.mark.parametrize("method", ["fixed", "sequential"])
def test_the_interval_excludes_zero_exactly_when_p_is_below_alpha(alpha: float, method: str) -> None:
    """The test and the interval come from one method (the inconsistency issue 16 found: p=0.03 with a CI over 0)."""
    for canary in range(150, 260, 3):
        effect = estimate_effect(one_request_each(200, 1000), one_request_each(canary, 1000))
        inference = fixed_inference(effect, alpha) if method == "fixed" else sequential_inference([effect], alpha, 0.05)
        excludes_zero = inference.ci[0] > 0 or inference.ci[1] < 0
        assert excludes_zero == inference.significant, (canary, inference)


def test_msprt_is_the_normal_mixture_likelihood_ratio() -> None:
    # theta ~ N(t, V) under H1 with t ~ N(0, tau^2): the marginal is N(0, V + tau^2); Lambda is its density ratio
    theta, variance, tau = 0.03, 0.0002, 0.05
    ratio = math.exp(-theta**2 / (2 * (variance + tau**2))) / math.sqrt(variance + tau**2)
    ratio /= math.exp(-theta**2 / (2 * variance)) / math.sqrt(variance)
    assert msprt_likelihood_ratio(theta, variance, tau) == pytest.approx(ratio)
    half = msprt_half_width(variance, tau, 0.05)
    assert msprt_likelihood_ratio(half, variance, tau) == pytest.approx(1 / 0.05)  # the boundary is Lambda = 1/alpha


def test_the_sequential_interval_is_wider_than_the_fixed_one_at_one_look() -> None:
    effect = estimate_effect(one_request_each(2000, 10_000), one_request_each(2100, 10_000))
    fixed, sequential = fixed_inference(effect, 0.05), sequential_inference([effect], 0.05, 0.05)
    assert sequential.ci[0] < fixed.ci[0] and sequential.ci[1] > fixed.ci[1]
    assert sequential.p_value > fixed.p_value


def test_peeking_at_every_window_holds_alpha_only_for_the_sequential_test() -> None:
    """300 A/A experiments, 20 looks each: the naive repeated z-test rejects far more often than alpha."""
    rng = np.random.default_rng(1)
    naive = sequential = 0
    for _ in range(300):
        n = np.zeros(2, np.int64)
        s = np.zeros(2)
        looks, any_naive = [], False
        for _ in range(20):
            n += 500
            s += rng.binomial(500, 0.1, size=2)
            effect = estimate_effect(one_request_each(int(s[0]), int(n[0])), one_request_each(int(s[1]), int(n[1])))
            looks.append(effect)
            any_naive |= fixed_inference(effect, 0.05).significant
        naive += any_naive
        sequential += sequential_inference(looks, 0.05, 0.05).significant
    assert naive / 300 > 0.12
    assert sequential / 300 <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / 300)


def test_cuped_removes_the_variance_the_pre_period_explains_and_keeps_the_estimate_unbiased() -> None:
    rng = np.random.default_rng(2)
    users = 4000
    rates = rng.beta(2, 10, size=2 * users)
    pre = rng.binomial(20, rates) / 20
    requests = rng.poisson(5, size=2 * users) + 1
    clicks = rng.binomial(requests, rates * np.r_[np.ones(users), np.full(users, 1.05)]).astype(float)
    arm = lambda sl: UserTotals(requests[sl], clicks[sl], pre[sl])  # noqa: E731
    effect = estimate_effect(arm(slice(0, users)), arm(slice(users, None)))
    plain = estimate_effect(arm(slice(0, users)), arm(slice(users, None)), cuped=False)
    assert effect.cuped.applied and effect.cuped.variance_reduction > 0.15
    assert effect.variance == pytest.approx(plain.variance * (1 - effect.cuped.variance_reduction))
    assert abs(effect.theta - math.log(1.05)) < 3 * math.sqrt(effect.variance)
    assert not plain.cuped.applied and plain.cuped.reason == "disabled"


def test_cuped_without_a_pre_period_is_reported_not_applied() -> None:
    effect = estimate_effect(one_request_each(100, 1000), one_request_each(120, 1000))
    assert not effect.cuped.applied and "no pre-period" in effect.cuped.reason


def test_users_missing_a_pre_period_keep_their_values() -> None:
    covariate = np.full(1000, np.nan)
    effect = estimate_effect(UserTotals(np.ones(1000, np.int64), np.r_[np.ones(100), np.zeros(900)], covariate),
                             UserTotals(np.ones(1000, np.int64), np.r_[np.ones(120), np.zeros(880)], covariate))
    assert effect.cuped.covered_users == 0.0 and not effect.cuped.applied


def test_a_zero_rate_gives_no_lift_and_no_evidence() -> None:
    effect = estimate_effect(one_request_each(0, 50), one_request_each(0, 60))
    assert effect.theta is None and fixed_inference(effect, 0.05).p_value == 1.0
    assert sequential_inference([effect], 0.05, 0.05).ci is None


def test_impossible_totals_are_rejected() -> None:
    with pytest.raises(ValueError, match="successes <= requests"):
        UserTotals(np.array([1, 2]), np.array([2.0, 0.0]))
