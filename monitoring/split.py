"""Sticky traffic split: a user always lands in the same arm, decided by a salted hash of the user id
(not by Python's randomised `hash`), so replays, services and reports agree on the assignment."""
from __future__ import annotations

import hashlib

import numpy as np

ARMS = ("control", "canary")  # the two arms of every A/B: replay, comparison, event sink
BUCKETS = 10_000
DEFAULT_SALT = "onevision-ab"


def user_buckets(user_ids: np.ndarray, salt: str = DEFAULT_SALT) -> np.ndarray:
    """A bucket in [0, 10000) per user id, uniform over users and stable across runs and machines."""
    ids = np.asarray(user_ids, dtype=np.int64)
    cache: dict[int, int] = {}
    out = np.empty(len(ids), dtype=np.int64)
    for i, uid in enumerate(ids.tolist()):
        if uid not in cache:
            digest = hashlib.blake2b(f"{salt}:{uid}".encode(), digest_size=8).digest()
            cache[uid] = int.from_bytes(digest, "big") % BUCKETS
        out[i] = cache[uid]
    return out


def canary_mask(user_ids: np.ndarray, canary_percent: float, salt: str = DEFAULT_SALT) -> np.ndarray:
    """True where the user's requests go to the canary (about `canary_percent` % of users)."""
    if not 0 <= canary_percent <= 100:
        raise ValueError(f"canary_percent must lie in [0, 100], got {canary_percent}")
    return user_buckets(user_ids, salt) < round(canary_percent * BUCKETS / 100)
