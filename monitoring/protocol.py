"""Client side of the inference protocol (docs/contracts.md): request envelopes and response parsing.

v1: `{"instances": [{"image_b64", "user_id", "top_k"}]}` → `{"predictions": [{"items": [...]}]}`.
v2 (Open Inference Protocol): input tensors `image_b64` (BYTES [B]), `user_id` (INT64 [B]), `top_k`
(INT64 [1]) → output tensor `predictions` (BYTES [B], one JSON document per row).
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import numpy as np


class ProtocolError(ValueError):
    """A response does not follow the inference protocol."""


@dataclass(frozen=True)
class Prediction:
    item_ids: list[int]
    sid_prefix: int  # first SID token of the top item, -1 when absent
    personalized: bool | None = None


def encode_request(protocol: str, png: list[bytes], user_ids: np.ndarray | None, k: int) -> dict[str, Any]:
    images = [base64.b64encode(b).decode("ascii") for b in png]
    if protocol == "v1":
        instances = []
        for i, image in enumerate(images):
            instance: dict[str, Any] = {"image_b64": image, "top_k": int(k)}
            if user_ids is not None:
                instance["user_id"] = int(user_ids[i])
            instances.append(instance)
        return {"instances": instances}
    if protocol == "v2":
        inputs: list[dict[str, Any]] = [
            {"name": "image_b64", "datatype": "BYTES", "shape": [len(images)], "data": images},
            {"name": "top_k", "datatype": "INT64", "shape": [1], "data": [int(k)]},
        ]
        if user_ids is not None:
            inputs.append({"name": "user_id", "datatype": "INT64", "shape": [len(images)],
                           "data": [int(u) for u in user_ids]})
        return {"inputs": inputs}
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
        outputs = {o.get("name"): o for o in payload.get("outputs", []) if isinstance(o, dict)}
        if "predictions" not in outputs:
            raise ProtocolError(f"v2 response has no output tensor 'predictions' (outputs: {sorted(map(str, outputs))})")
        return [_prediction(row) for row in outputs["predictions"].get("data", [])]
    raise ValueError(f"unknown protocol {protocol!r}; expected 'v1' or 'v2'")
