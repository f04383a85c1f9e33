"""Two-proportion comparison: z-test, Wald interval of the difference, delta-method interval of the lift."""
from __future__ import annotations

import math

import pytest

from monitoring.stats import compare_proportions


def test_z_test_matches_the_textbook_value() -> None:
    # 45/100 vs 60/100: pooled p = 0.525, z = 0.15 / sqrt(0.525 * 0.475 * 0.02) = 2.1239, p = 0.0337
    c = compare_proportions(45, 100, 60, 100)
    assert c.z == pytest.approx(2.1239, abs=1e-4)
    assert c.p_value == pytest.approx(0.0337, abs=1e-4)
    assert c.rel_lift == pytest.approx(60 / 45 - 1)


def test_lift_interval_is_the_delta_method_interval_of_the_log_ratio() -> None:
    c = compare_proportions(200, 1000, 260, 1000, confidence=0.95)
    se = math.sqrt(0.8 / (1000 * 0.2) + 0.74 / (1000 * 0.26))
    expected = (math.exp(math.log(1.3) - 1.959964 * se) - 1, math.exp(math.log(1.3) + 1.959964 * se) - 1)
    assert c.rel_ci == pytest.approx(expected, abs=1e-5)
    assert c.rel_ci[0] > 0 and c.significant(0.05)


def test_equal_arms_are_not_significant_and_their_interval_covers_zero() -> None:
    c = compare_proportions(300, 1000, 300, 1000)
    assert c.p_value == pytest.approx(1.0)
    assert c.abs_ci[0] < 0 < c.abs_ci[1] and c.rel_ci[0] < 0 < c.rel_ci[1]


def test_all_zero_arms_give_no_evidence_and_no_lift() -> None:
    c = compare_proportions(0, 50, 0, 60)
    assert c.p_value == 1.0 and math.isnan(c.rel_lift)


def test_successes_above_n_are_rejected_naming_the_arm() -> None:
    with pytest.raises(ValueError, match="canary"):
        compare_proportions(1, 10, 11, 10)
