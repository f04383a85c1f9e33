"""Client side of the inference protocol (docs/contracts.md). The envelopes come from the serving core's
client helpers (`onevision.service.client.v1_request` / `v2_request` / `v2_predictions`); this module only
turns a response row into the slate the replay logs.

v1: `{"instances": [{"image_b64", "user_id", "top_k"}]}` → `{"predictions": [{"items": [...]}]}`.
v2 (Open Inference Protocol): input tensors `image_b64` (BYTES [B]), `user_id` (INT64 [B]), `top_k`
(INT64 [1]) → output tensor `predictions` (BYTES [B], one JSON document per row).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from onevision.service.client import v1_request, v2_predictions, v2_request


class ProtocolError(ValueError):
    """A response does not follow the inference protocol."""


@dataclass(frozen=True)
class Prediction:
    item_ids: list[int]
    sid_prefix: int  # first SID token of the top item, -1 when absent (e.g. the cascade)
    personalized: bool | None = None


def encode_request(protocol: str, png: list[bytes], user_ids: np.ndarray | None, k: int,
                   v2_nested: bool = False) -> dict[str, Any]:
    """`v2_nested` sends shape [1, B], which TorchServe's kservev2 envelope needs for B > 1."""
    users = None if user_ids is None else [int(u) for u in user_ids]
    if protocol == "v1":
        return v1_request(png, users, k)
    if protocol == "v2":
        return v2_request(png, users, k, nested=v2_nested)
    raise ValueError(f"unknown protocol {protocol!r}; expected 'v1' or 'v2'")


def _prediction(row: Any) -> Prediction:
    if isinstance(row, (str, bytes)):
        try:
            row = json.loads(row)
        except json.JSONDecodeError as exc:
            raise ProtocolError(f"a prediction row is not JSON: {exc}") from exc
    if not isinstance(row, dict) or not isinstance(row.get("items"), list):
        raise ProtocolError(f"a prediction must be an object with an 'items' list, got {str(row)[:120]}")
    try:
        ids = [int(item["item_id"]) for item in row["items"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"every item needs an integer 'item_id': {str(row['items'][:3])[:160]}") from exc
    sid = row["items"][0].get("sid") if row["items"] else None
    prefix = int(sid[0]) if isinstance(sid, list) and sid else -1
    return Prediction(ids, prefix, row.get("personalized"))


def decode_response(protocol: str, payload: Any) -> list[Prediction]:
    if not isinstance(payload, dict):
        raise ProtocolError(f"response must be a JSON object, got {type(payload).__name__}")
    if protocol == "v1":
        if not isinstance(payload.get("predictions"), list):
            raise ProtocolError(f"v1 response has no 'predictions' list (keys: {sorted(payload)})")
        return [_prediction(row) for row in payload["predictions"]]
    if protocol == "v2":
        try:
            rows = v2_predictions(payload)
        except (ValueError, KeyError, TypeError) as exc:
            raise ProtocolError(str(exc)) from exc
        return [_prediction(row) for row in rows]
    raise ValueError(f"unknown protocol {protocol!r}; expected 'v1' or 'v2'")
