"""Client side of the inference protocol: request bodies for encoded images, and the rows of a typed v2
response read back in the v1 form (used by monitoring/, bench/ and the integration tests)."""
from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from onevision.service.protocol import V2_IMAGE, V2_ITEM_IDS, V2_PERSONALIZED, V2_SCORES, V2_SIDS, V2_TOP_K, V2_USER, flat


def v2_predictions(response: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Client side: the rows of a typed v2 response, in the v1 form (``items`` with item_id / sid / score,
    ``personalized``, ``version``, ``model``). Reads shapes [B, K] or flat ones (TorchServe's kservev2 envelope
    flattens every output tensor to one dimension)."""
    outputs = response.get("outputs")
    if not isinstance(outputs, (list, tuple)):
        raise ValueError(f"v2 response has no 'outputs' list: keys {sorted(map(str, response))}")
    tensors = {o.get("name"): o for o in outputs if isinstance(o, Mapping)}
    missing = [n for n in (V2_ITEM_IDS, V2_SCORES, V2_PERSONALIZED) if n not in tensors]
    if missing:
        raise ValueError(f"v2 response lacks output tensors {missing}; got {sorted(map(str, tensors))}")
    personalized = [bool(x) for x in flat(tensors[V2_PERSONALIZED]["data"])]
    b = len(personalized)
    item_ids = np.asarray(flat(tensors[V2_ITEM_IDS]["data"]), np.int64)
    scores = np.asarray(flat(tensors[V2_SCORES]["data"]), np.float64)
    if b == 0 or len(item_ids) % b or len(scores) != len(item_ids):
        raise ValueError(f"v2 response: {len(item_ids)} item ids and {len(scores)} scores do not fit {b} rows")
    k = len(item_ids) // b
    item_ids, scores = item_ids.reshape(b, k), scores.reshape(b, k)
    sids = None
    if V2_SIDS in tensors:
        flat_sids = np.asarray(flat(tensors[V2_SIDS]["data"]), np.int64)
        if k == 0 or len(flat_sids) % (b * k):
            raise ValueError(f"v2 response: {len(flat_sids)} SID codes do not fit [{b}, {k}, L]")
        sids = flat_sids.reshape(b, k, -1)
    params = response.get("parameters") if isinstance(response.get("parameters"), Mapping) else {}
    rows = []
    for i in range(b):
        items = [{"item_id": int(item_ids[i, j]), "sid": None if sids is None else sids[i, j].tolist(),
                  "score": float(scores[i, j])} for j in range(k) if item_ids[i, j] >= 0]
        rows.append({"items": items, "personalized": personalized[i], "model": params.get("model"),
                     "version": response.get("model_version")})
    return rows


def encode_image(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def v1_request(images: Sequence[bytes], user_ids: Sequence[int | None] | None = None,
               top_k: int | None = None) -> dict[str, Any]:
    """Client side: a KServe v1 body for encoded images (and optional user ids / k)."""
    instances = []
    for i, data in enumerate(images):
        row: dict[str, Any] = {"image_b64": encode_image(data)}
        if user_ids is not None and user_ids[i] is not None:
            row["user_id"] = int(user_ids[i])
        if top_k is not None:
            row["top_k"] = int(top_k)
        instances.append(row)
    return {"instances": instances}


def v2_request(images: Sequence[bytes], user_ids: Sequence[int] | None = None, top_k: int | None = None,
               nested: bool = False) -> dict[str, Any]:
    """Client side: an OIP body. `nested=True` sends shape [1, B] (what TorchServe's envelope needs for B > 1)."""
    b = len(images)
    shape, wrap = ([1, b], lambda xs: [xs]) if nested else ([b], lambda xs: xs)
    inputs = [{"name": V2_IMAGE, "datatype": "BYTES", "shape": shape, "data": wrap([encode_image(d) for d in images])}]
    if user_ids is not None:
        inputs.append({"name": V2_USER, "datatype": "INT64", "shape": shape, "data": wrap([int(u) for u in user_ids])})
    if top_k is not None:
        inputs.append({"name": V2_TOP_K, "datatype": "INT64", "shape": [1], "data": [int(top_k)]})
    return {"inputs": inputs}
