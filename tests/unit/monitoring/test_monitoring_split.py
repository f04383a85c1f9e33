"""Sticky traffic split by a salted hash of the user id."""
from __future__ import annotations

import numpy as np
import pytest

from monitoring.split import canary_mask, user_buckets


def test_a_user_always_lands_in_the_same_arm() -> None:
    users = np.array([5, 17, 5, 99, 17, 5])
    mask = canary_mask(users, 50)
    assert mask[0] == mask[2] == mask[5] and mask[1] == mask[4]
    assert np.array_equal(mask, canary_mask(users[::-1], 50)[::-1])


def test_the_canary_share_of_users_follows_the_percent() -> None:
    users = np.arange(20_000)
    assert canary_mask(users, 10).mean() == pytest.approx(0.10, abs=0.01)


def test_raising_the_percent_only_adds_users_to_the_canary() -> None:
    users = np.arange(5_000)
    assert not (canary_mask(users, 10) & ~canary_mask(users, 30)).any()


def test_the_salt_reshuffles_the_assignment() -> None:
    users = np.arange(1_000)
    assert not np.array_equal(user_buckets(users, "a"), user_buckets(users, "b"))


def test_percent_outside_0_100_is_rejected() -> None:
    with pytest.raises(ValueError, match="canary_percent"):
        canary_mask(np.arange(3), 120)
