"""Server side of the two envelopes: KServe v1 (``{"instances": [...]}`` -> ``{"predictions": [...]}``) and
v2 / Open Inference Protocol tensors (see `onevision.service.protocol`). `SearchService` answers through these
functions; the TorchServe handler and the kserve.Model predictor in serving/ only adapt their framework's
objects to them."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from onevision.service.limits import ServiceLimits
from onevision.service.protocol import (
    EMPTY_SLOT, V2_IMAGE, V2_INT_TYPES, V2_ITEM_IDS, V2_PERSONALIZED, V2_SCORES, V2_SIDS, V2_TOP_K, V2_USER,
    BadRequest, ModelInfo, SearchResult, flat, is_int,
)


def v1_instances(body: Any) -> list[Any]:
    """The instances of a KServe v1 body ``{"instances": [...]}``."""
    if not isinstance(body, Mapping) or "instances" not in body:
        got = f"an object with keys {sorted(map(str, body))}" if isinstance(body, Mapping) else type(body).__name__
        raise BadRequest(f'request body: expected {{"instances": [...]}} (KServe v1), got {got}')
    return body["instances"]


def v1_response(predictions: list[dict[str, Any]]) -> dict[str, Any]:
    return {"predictions": predictions}


def _tensor(spec: Any, where: str) -> tuple[str, str, int, list[Any]]:
    if not isinstance(spec, Mapping):
        raise BadRequest(f"{where}: expected a tensor object with name, datatype, shape, data; got {type(spec).__name__}")
    missing = [k for k in ("name", "datatype", "shape", "data") if k not in spec]
    if missing:
        raise BadRequest(f"{where}: tensor is missing {missing}")
    name, datatype, shape = spec["name"], str(spec["datatype"]).upper(), spec["shape"]
    if not isinstance(shape, (list, tuple)) or not all(is_int(s) and s >= 0 for s in shape):
        raise BadRequest(f"{where} ({name}): shape must be a list of non-negative integers, got {shape!r}")
    data = flat(spec["data"])
    count = int(np.prod(shape)) if len(shape) else 1
    if count != len(data):
        hint = ""
        if datatype == "BYTES" and len(data) == 1 and count > 1:
            hint = (" (TorchServe's kservev2 envelope passes on only the first element of a BYTES tensor: "
                    "send a batch as shape [1, B] with nested data [[...]], or one image per request)")
        raise BadRequest(f"{where} ({name}): shape {list(shape)} holds {count} elements but data has {len(data)}{hint}")
    return str(name), datatype, count, data


def v2_instances(inputs: Any, limits: ServiceLimits | None = None) -> list[dict[str, Any]]:
    """Instances from Open Inference Protocol input tensors: ``image_b64`` BYTES (B elements), optional
    ``user_id`` INT64 (B) and ``top_k`` INT64 (1 or B). Any shape is read row-major ([B] or [1, B])."""
    if not isinstance(inputs, (list, tuple)) or not inputs:
        raise BadRequest(f'"inputs": expected a non-empty list of tensors, got {type(inputs).__name__}')
    tensors: dict[str, tuple[str, int, list[Any]]] = {}
    for i, spec in enumerate(inputs):
        name, datatype, count, data = _tensor(spec, f"inputs[{i}]")
        if name in tensors:
            raise BadRequest(f"inputs[{i}]: tensor {name!r} given twice")
        if name not in (V2_IMAGE, V2_USER, V2_TOP_K):
            raise BadRequest(f"inputs[{i}]: unknown tensor {name!r}; expected {V2_IMAGE} (BYTES), "
                             f"optional {V2_USER} (INT64) and {V2_TOP_K} (INT64)")
        tensors[name] = (datatype, count, data)
    if V2_IMAGE not in tensors:
        raise BadRequest(f"missing image: no input tensor {V2_IMAGE!r} (BYTES, one base64 string per row)")
    datatype, b, images = tensors[V2_IMAGE]
    if datatype != "BYTES":
        raise BadRequest(f"{V2_IMAGE}: datatype must be BYTES, got {datatype}")
    if b == 0:
        raise BadRequest(f"{V2_IMAGE}: holds no image")
    if limits is not None and b > limits.max_batch:
        raise BadRequest(f"{V2_IMAGE}: {b} images exceed the batch limit of {limits.max_batch}", 413)
    rows: list[dict[str, Any]] = [{"image_b64": img} for img in images]
    for name, allowed_counts in ((V2_USER, (b,)), (V2_TOP_K, (1, b))):
        if name not in tensors:
            continue
        datatype, count, values = tensors[name]
        if datatype not in V2_INT_TYPES:
            raise BadRequest(f"{name}: datatype must be INT64, got {datatype}")
        if count not in allowed_counts:
            expected = " or ".join(str(c) for c in sorted(set(allowed_counts)))
            raise BadRequest(f"{name}: {count} values for {b} images; expected {expected}")
        for row, value in zip(rows, values * b if count == 1 else values):
            row[name] = value
    return rows


@dataclass(frozen=True)
class V2Tensor:
    """One Open Inference Protocol output tensor; `data` is flat, row-major."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape), "data": self.data.tolist()}


def v2_outputs(results: Sequence[SearchResult]) -> list[V2Tensor]:
    """Typed output tensors of a batch: ``item_ids`` INT64 [B, K], ``scores`` FP32 [B, K], ``sids`` INT64
    [B, K, L] (generator only) and ``personalized`` BOOL [B]. K is the batch's largest top_k; a shorter row is
    padded with item id -1 and score 0. A non-finite score of a real item is sent as FP32's lowest value
    (JSON has no infinities)."""
    b = len(results)
    k = max((len(r.item_ids) for r in results), default=0)
    item_ids = np.full((b, k), EMPTY_SLOT, np.int64)
    scores = np.zeros((b, k), np.float32)
    depth = next((r.sids.shape[1] for r in results if r.sids is not None), None)
    sids = None if depth is None else np.full((b, k, depth), EMPTY_SLOT, np.int64)
    for i, r in enumerate(results):
        n = len(r.item_ids)
        item_ids[i, :n] = r.item_ids
        scores[i, :n] = r.scores
        if sids is not None and r.sids is not None:
            sids[i, :n] = r.sids
    empty = item_ids < 0
    scores = np.where(empty, 0.0, np.nan_to_num(scores, nan=np.finfo(np.float32).min, neginf=np.finfo(np.float32).min,
                                                posinf=np.finfo(np.float32).max)).astype(np.float32)
    if sids is not None:
        sids[empty] = EMPTY_SLOT
    out = [V2Tensor(V2_ITEM_IDS, "INT64", (b, k), item_ids.reshape(-1)),
           V2Tensor(V2_SCORES, "FP32", (b, k), scores.reshape(-1))]
    if sids is not None:
        out.append(V2Tensor(V2_SIDS, "INT64", (b, k, depth), sids.reshape(-1)))
    out.append(V2Tensor(V2_PERSONALIZED, "BOOL", (b,), np.array([r.personalized for r in results], bool)))
    return out


def v2_response(results: Sequence[SearchResult], model_name: str, info: ModelInfo | None = None,
                request_id: str | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"model_name": model_name, "outputs": [t.to_json() for t in v2_outputs(results)]}
    if info is not None:
        response["model_version"] = info.version
        response["parameters"] = {"model": info.kind}
    if request_id:
        response["id"] = request_id
    return response


def v2_inputs(body: Any) -> Any:
    """The input tensors of an Open Inference Protocol body ``{"inputs": [...]}``."""
    if not isinstance(body, Mapping) or "inputs" not in body:
        raise BadRequest('request body: expected {"inputs": [...]} (Open Inference Protocol v2)')
    return body["inputs"]
