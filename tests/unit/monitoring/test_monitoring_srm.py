"""Sample-ratio mismatch tests: the chi-square matches scipy's textbook value, the sequential test matches the
values of Optimizely's ssrm-test 0.1.5 (computed with it in a separate numpy<2 environment), and both catch a
10% vs 9% split bug."""
from __future__ import annotations

import numpy as np
import pytest

from monitoring.srm import chi_square_p_value, sequential_p_values

# ssrm_test.sequential_p_values(data, [0.9, 0.1]) with its defaults (prior mean = the split, concentration 10000)
SSRM_CASES = [
    ([[900, 100], [880, 120], [910, 90], [850, 150]], [1.0, 0.9178103240098385, 0.9178103240098385, 0.29406423204114207]),
    ([[910, 90], [905, 95], [912, 88], [915, 85], [909, 91]],
     [0.9929836261742329, 0.9812025109173943, 0.8256227873700919, 0.5760124968326958, 0.4557273949699294]),
]


@pytest.mark.parametrize("per_look, expected", SSRM_CASES)
def test_sequential_p_values_match_ssrm_test(per_look, expected) -> None:
    assert sequential_p_values(np.cumsum(per_look, axis=0), [0.9, 0.1]) == pytest.approx(expected, rel=1e-8)


def test_chi_square_is_the_goodness_of_fit_test() -> None:
    # 4551 / 449 against 90 / 10: chi2 = 51^2 / 4500 + 51^2 / 500 = 5.78, p = 0.0162
    assert chi_square_p_value([4551, 449], [0.9, 0.1]) == pytest.approx(0.016210, abs=1e-5)


def test_a_ten_versus_nine_percent_split_bug_is_caught_and_a_correct_split_is_not() -> None:
    rng = np.random.default_rng(0)
    broken = rng.binomial(20_000, 0.09)
    correct = rng.binomial(20_000, 0.10)
    assert chi_square_p_value([20_000 - broken, broken], [0.9, 0.1]) < 0.001
    assert chi_square_p_value([20_000 - correct, correct], [0.9, 0.1]) > 0.001
    looks = np.cumsum([[900 - k, k] for k in rng.binomial(900 * np.ones(40, int), 0.09)], axis=0)
    assert sequential_p_values(looks, [0.9, 0.1])[-1] < 0.001


def test_p_values_never_increase_over_looks() -> None:
    rng = np.random.default_rng(3)
    p = sequential_p_values(np.cumsum([[k, 100 - k] for k in rng.binomial(100, 0.5, size=30)], axis=0), [0.5, 0.5])
    assert all(b <= a for a, b in zip(p, p[1:])) and all(0 <= x <= 1 for x in p)


@pytest.mark.parametrize("counts, shares, message", [
    ([10, 20], [0.5, 0.4], "sum to 1"), ([10], [1.0], "one value per arm"), ([-1, 3], [0.5, 0.5], ">= 0"),
])
def test_bad_inputs_are_named(counts, shares, message) -> None:
    with pytest.raises(ValueError, match=message):
        chi_square_p_value(counts, shares)
