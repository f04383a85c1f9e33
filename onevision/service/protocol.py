"""The inference protocol's shared facts: tensor and field names, the client-error type, and what one answer
holds. One request instance is ``{"image_b64": str, "user_id": int, "top_k": int}`` (``image`` may hold raw
bytes, or KServe's ``{"b64": str}``); v2 / Open Inference Protocol tensors are ``image_b64`` BYTES,
``user_id`` INT64, ``top_k`` INT64 in, and typed ``item_ids`` INT64 [B, K], ``scores`` FP32 [B, K],
``sids`` INT64 [B, K, L] and ``personalized`` BOOL [B] out.

Every client mistake raises `BadRequest(reason, status)`: 400 for a malformed request, 413 for one that
is too large. An unknown user is not an error: the request falls back to the non-personalised path
(``user_id=-1``) and the response says ``"personalized": false``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

V2_IMAGE, V2_USER, V2_TOP_K = "image_b64", "user_id", "top_k"
V2_ITEM_IDS, V2_SCORES, V2_SIDS, V2_PERSONALIZED = "item_ids", "scores", "sids", "personalized"
EMPTY_SLOT = -1  # item id (and SID codes) of an empty slot in a typed v2 output
INSTANCE_FIELDS = ("image_b64", "image", "user_id", "top_k")
V2_INT_TYPES = frozenset({"INT64", "INT32", "INT16", "INT8", "UINT64", "UINT32", "UINT16", "UINT8"})
UNKNOWN_USER = -1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class BadRequest(ValueError):
    """The client sent a request the service cannot answer; `status` is the HTTP code to reply with."""

    def __init__(self, reason: str, status: int = 400):
        if status not in (400, 413):
            raise ValueError(f"BadRequest status must be 400 or 413, got {status}")
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class ModelInfo:
    """What a response says about the model that answered it (from the bundle's bundle.json)."""

    kind: str  # "generator" | "cascade"
    version: str
    image_size: int  # the encoder's input side; other sizes are resized
    created: str | float | None = None


@dataclass
class SearchResult:
    item_ids: np.ndarray  # int64 (k,), -1 pads
    scores: np.ndarray  # float32 (k,)
    sids: np.ndarray | None  # int64 (k, depth) for the generator, None for the cascade
    personalized: bool


def is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def flat(values: Any) -> list[Any]:
    """Row-major flattening of a tensor's JSON data (OIP allows nested or flat)."""
    if isinstance(values, np.ndarray):
        return values.reshape(-1).tolist()
    if isinstance(values, (list, tuple)):
        out: list[Any] = []
        for v in values:
            out.extend(flat(v) if isinstance(v, (list, tuple, np.ndarray)) else [v])
        return out
    return [values]
