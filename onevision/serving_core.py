"""Framework-free online serving: validate a search request, run the bundle's retriever, shape the answer.

`SearchService` is the one class behind both adapters (the TorchServe handler and the kserve.Model
predictor in `serving/`); it knows nothing about either framework. The protocol is the one of
docs/contracts.md: one instance is ``{"image_b64": str, "user_id": int, "top_k": int}`` (``image`` may hold
raw bytes, or KServe's ``{"b64": str}``); the envelope helpers translate KServe v1
(``{"instances": [...]}`` -> ``{"predictions": [...]}``) and v2 / Open Inference Protocol tensors
(``image_b64`` BYTES, ``user_id`` INT64, ``top_k`` INT64 -> typed ``item_ids`` INT64 [B, K], ``scores`` FP32
[B, K], ``sids`` INT64 [B, K, L] and ``personalized`` BOOL [B]).

Every client mistake raises `BadRequest(reason, status)`: 400 for a malformed request, 413 for one that
is too large. An unknown user is not an error: the request falls back to the non-personalised path
(``user_id=-1``) and the response says ``"personalized": false``.
"""
from __future__ import annotations

import base64
import binascii
import io
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from onevision.evaluation.retriever import Retriever

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
class ServiceLimits:
    max_image_bytes: int = 2_000_000  # encoded image size (413 above)
    max_batch: int = 64  # instances per request (413 above)
    default_top_k: int = 10
    max_top_k: int = 100  # top_k must lie in [1, max_top_k] (400 outside)
    max_image_pixels: int = 4096 * 4096  # decoded width x height (413 above): a small PNG can be huge
    # decoded pixels of all images of one request (413 above): many large images in one body cost seconds of CPU
    max_request_pixels: int = 2 * 4096 * 4096
    # HTTP body of one request (413 above): TorchServe's own max_request_size default, which both servers apply
    max_request_bytes: int = 6_553_500

    def __post_init__(self) -> None:
        if min(self.max_image_bytes, self.max_batch, self.max_top_k, self.max_image_pixels,
               self.max_request_pixels, self.max_request_bytes) < 1:
            raise ValueError(f"every serving limit must be >= 1, got {self}")
        if not 1 <= self.default_top_k <= self.max_top_k:
            raise ValueError(f"default_top_k must lie in [1, max_top_k={self.max_top_k}], got {self.default_top_k}")

    @property
    def max_b64_chars(self) -> int:
        return 4 * math.ceil(self.max_image_bytes / 3)


@dataclass(frozen=True)
class ModelInfo:
    """What a response says about the model that answered it (from the bundle's bundle.json)."""

    kind: str  # "generator" | "cascade"
    version: str
    image_size: int  # the encoder's input side; other sizes are resized
    created: str | float | None = None


@dataclass(frozen=True)
class SearchRequest:
    """One validated instance: a decoded image at the model's size, a user id (-1: none) and k."""

    image: np.ndarray  # uint8 (S, S, 3)
    user_id: int
    top_k: int


@dataclass
class SearchResult:
    item_ids: np.ndarray  # int64 (k,), -1 pads
    scores: np.ndarray  # float32 (k,)
    sids: np.ndarray | None  # int64 (k, depth) for the generator, None for the cascade
    personalized: bool


# ---------------------------------------------------------------------------------------------- parsing
def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _image_bytes(instance: Mapping[str, Any], where: str, limits: ServiceLimits) -> bytes:
    """The encoded image of one instance, size-checked; raises BadRequest naming the field."""
    has_b64, has_raw = "image_b64" in instance, "image" in instance
    if has_b64 and has_raw:
        raise BadRequest(f"{where}: give the image once, as 'image_b64' (base64 string) or 'image' (bytes), not both")
    if not (has_b64 or has_raw):
        raise BadRequest(f"{where}: missing image; expected 'image_b64' (base64 string) or 'image' (bytes)")
    name = "image_b64" if has_b64 else "image"
    value = instance[name]
    if isinstance(value, Mapping) and set(value) == {"b64"}:  # KServe v1's convention for binary values
        value = value["b64"]
    if isinstance(value, (bytes, bytearray, memoryview)) and name == "image":
        data = bytes(value)
    elif isinstance(value, (str, bytes, bytearray)):
        text = value if isinstance(value, str) else bytes(value).decode("ascii", errors="replace")
        if len(text) > limits.max_b64_chars + 4:
            raise BadRequest(
                f"{where}.{name}: base64 image of {len(text)} characters exceeds the limit of "
                f"{limits.max_image_bytes} bytes ({limits.max_b64_chars} base64 characters)", 413
            )
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadRequest(f"{where}.{name}: not valid base64 ({exc})") from exc
    else:
        raise BadRequest(
            f"{where}.{name}: expected a base64 string{' or bytes' if name == 'image' else ''}, "
            f"got {type(value).__name__}"
        )
    if len(data) > limits.max_image_bytes:
        raise BadRequest(f"{where}.{name}: image of {len(data)} bytes exceeds the limit of {limits.max_image_bytes} bytes", 413)
    if not data:
        raise BadRequest(f"{where}.{name}: image is empty")
    return data


IMAGE_FORMATS = ("PNG", "JPEG")  # what the contract accepts; PIL would also open EPS, TIFF, ...


class PixelBudget:
    """Decoded pixels one request may still spend (ServiceLimits.max_request_pixels)."""

    def __init__(self, limits: ServiceLimits):
        self.left = limits.max_request_pixels
        self.limit = limits.max_request_pixels

    def spend(self, pixels: int, where: str) -> None:
        if pixels > self.left:
            raise BadRequest(f"{where}: the request's images hold more than {self.limit} pixels in all; "
                             "send fewer or smaller images per request", 413)
        self.left -= pixels


def decode_request_image(data: bytes, image_size: int, where: str, limits: ServiceLimits,
                         budget: PixelBudget | None = None) -> np.ndarray:
    """PNG/JPEG bytes -> uint8 (S, S, 3) at the model's size; BadRequest when undecodable, of another format or
    too large. The size is checked from the header before anything is decoded; a JPEG is decoded at the
    smallest DCT scale that still covers the model's size."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as im:  # reads the header only
            width, height = im.size
            if width * height > limits.max_image_pixels:
                raise BadRequest(
                    f"{where}: image of {width}x{height} pixels exceeds the limit of {limits.max_image_pixels} pixels",
                    413)
            if budget is not None:
                budget.spend(width * height, where)
            if im.format == "JPEG":
                im.draft("RGB", (image_size, image_size))
            pixels = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except BadRequest:
        raise
    except Exception as exc:  # PIL raises several types for bytes that are not an image (or not PNG/JPEG)
        raise BadRequest(f"{where}: image bytes could not be decoded as PNG or JPEG ({type(exc).__name__}: {exc})") from exc
    if pixels.shape[:2] != (image_size, image_size):
        resized = Image.fromarray(pixels).resize((image_size, image_size), Image.Resampling.BILINEAR)
        pixels = np.asarray(resized, dtype=np.uint8)
    return pixels


def parse_instance(instance: Any, image_size: int, limits: ServiceLimits, where: str = "instance",
                   budget: PixelBudget | None = None) -> SearchRequest:
    """Validate one request instance (see the module docstring) and decode its image."""
    if not isinstance(instance, Mapping):
        raise BadRequest(
            f"{where}: expected an object like {{\"image_b64\": \"...\", \"user_id\": 17, \"top_k\": 10}}, "
            f"got {type(instance).__name__}"
        )
    unknown = sorted(str(k) for k in instance if k not in INSTANCE_FIELDS)
    if unknown:
        raise BadRequest(f"{where}: unknown field(s) {unknown}; expected some of {list(INSTANCE_FIELDS)}")
    data = _image_bytes(instance, where, limits)
    user_id = instance.get("user_id")
    if user_id is None:
        user_id = UNKNOWN_USER
    elif not _is_int(user_id):
        raise BadRequest(f"{where}.user_id: expected an integer, got {type(user_id).__name__} {user_id!r}")
    elif not INT64_MIN <= user_id <= INT64_MAX:
        raise BadRequest(f"{where}.user_id: {user_id} does not fit a 64-bit signed integer (user ids are INT64)")
    top_k = instance.get("top_k")
    if top_k is None:
        top_k = limits.default_top_k
    elif not _is_int(top_k):
        raise BadRequest(f"{where}.top_k: expected an integer, got {type(top_k).__name__} {top_k!r}")
    elif not 1 <= top_k <= limits.max_top_k:
        raise BadRequest(f"{where}.top_k: {top_k} is out of range; expected 1 <= top_k <= {limits.max_top_k}")
    image = decode_request_image(data, image_size, f"{where}.image", limits, budget)
    return SearchRequest(image=image, user_id=int(user_id), top_k=int(top_k))


def check_batch(instances: Any, limits: ServiceLimits, where: str = "instances") -> list[Any]:
    if not isinstance(instances, (list, tuple)):
        raise BadRequest(f"{where}: expected a list of instances, got {type(instances).__name__}")
    if not instances:
        raise BadRequest(f"{where}: is empty; send at least one instance")
    if len(instances) > limits.max_batch:
        raise BadRequest(f"{where}: {len(instances)} instances exceed the batch limit of {limits.max_batch}", 413)
    return list(instances)


# ------------------------------------------------------------------------------------------- envelopes
def v1_instances(body: Any) -> list[Any]:
    """The instances of a KServe v1 body ``{"instances": [...]}``."""
    if not isinstance(body, Mapping) or "instances" not in body:
        got = f"an object with keys {sorted(map(str, body))}" if isinstance(body, Mapping) else type(body).__name__
        raise BadRequest(f'request body: expected {{"instances": [...]}} (KServe v1), got {got}')
    return body["instances"]


def v1_response(predictions: list[dict[str, Any]]) -> dict[str, Any]:
    return {"predictions": predictions}


def _flat(values: Any) -> list[Any]:
    """Row-major flattening of a tensor's JSON data (OIP allows nested or flat)."""
    if isinstance(values, np.ndarray):
        return values.reshape(-1).tolist()
    if isinstance(values, (list, tuple)):
        out: list[Any] = []
        for v in values:
            out.extend(_flat(v) if isinstance(v, (list, tuple, np.ndarray)) else [v])
        return out
    return [values]


def _tensor(spec: Any, where: str) -> tuple[str, str, int, list[Any]]:
    if not isinstance(spec, Mapping):
        raise BadRequest(f"{where}: expected a tensor object with name, datatype, shape, data; got {type(spec).__name__}")
    missing = [k for k in ("name", "datatype", "shape", "data") if k not in spec]
    if missing:
        raise BadRequest(f"{where}: tensor is missing {missing}")
    name, datatype, shape = spec["name"], str(spec["datatype"]).upper(), spec["shape"]
    if not isinstance(shape, (list, tuple)) or not all(_is_int(s) and s >= 0 for s in shape):
        raise BadRequest(f"{where} ({name}): shape must be a list of non-negative integers, got {shape!r}")
    data = _flat(spec["data"])
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
    personalized = [bool(x) for x in _flat(tensors[V2_PERSONALIZED]["data"])]
    b = len(personalized)
    item_ids = np.asarray(_flat(tensors[V2_ITEM_IDS]["data"]), np.int64)
    scores = np.asarray(_flat(tensors[V2_SCORES]["data"]), np.float64)
    if b == 0 or len(item_ids) % b or len(scores) != len(item_ids):
        raise ValueError(f"v2 response: {len(item_ids)} item ids and {len(scores)} scores do not fit {b} rows")
    k = len(item_ids) // b
    item_ids, scores = item_ids.reshape(b, k), scores.reshape(b, k)
    sids = None
    if V2_SIDS in tensors:
        flat_sids = np.asarray(_flat(tensors[V2_SIDS]["data"]), np.int64)
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


# --------------------------------------------------------------------------------------------- service
def read_model_info(bundle_dir: Path) -> ModelInfo:
    meta_path = bundle_dir / "bundle.json"
    if not meta_path.exists():
        raise FileNotFoundError(f"not a model bundle: {meta_path} is missing")
    meta = json.loads(meta_path.read_text())
    kind = meta.get("kind")
    if kind not in ("generator", "cascade"):
        raise ValueError(f"{meta_path}: kind must be 'generator' or 'cascade', got {kind!r}")
    encoder_meta = bundle_dir / "encoder" / "encoder.json"
    if not encoder_meta.exists():
        raise FileNotFoundError(f"model bundle {bundle_dir} has no encoder config: {encoder_meta} is missing")
    image_size = int(json.loads(encoder_meta.read_text())["image_size"])
    return ModelInfo(kind=kind, version=str(meta.get("version", "unknown")), image_size=image_size,
                     created=meta.get("created"))


def _known_users_of(retriever: Any, bundle_dir: Path) -> Callable[[np.ndarray], np.ndarray]:
    """Who the model can personalise for: the user table the retriever ranks with (the generator's
    `users`, the cascade ranker's `users`), else the bundle's userfeatures/; none: nobody is known."""
    table = getattr(retriever, "users", None)
    if table is None:
        table = getattr(getattr(retriever, "ranker", None), "users", None)
    if table is None and (bundle_dir / "userfeatures").exists():
        from onevision.userfeatures import UserFeatureTable

        table = UserFeatureTable.load(bundle_dir / "userfeatures")
    if table is None:
        return lambda ids: np.zeros(len(ids), dtype=bool)
    return table.known


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


class SearchService:
    """Loads a model bundle once; answers validated search requests with ranked items."""

    def __init__(self, bundle_dir: str | Path, limits: ServiceLimits = ServiceLimits()):
        from onevision.bundle import load_retriever

        bundle_dir = Path(bundle_dir)
        info = read_model_info(bundle_dir)
        retriever = load_retriever(bundle_dir)
        self._setup(retriever, info, _known_users_of(retriever, bundle_dir), limits)
        self.bundle_dir: Path | None = bundle_dir

    @classmethod
    def from_retriever(cls, retriever: Retriever, info: ModelInfo,
                       known_users: Callable[[np.ndarray], np.ndarray] | None = None,
                       limits: ServiceLimits = ServiceLimits()) -> SearchService:
        """A service around an already loaded retriever (embedding, tests). `known_users(ids) -> bool mask`;
        None: every user is unknown. A retriever with `decode()` also reports SIDs."""
        service = cls.__new__(cls)
        service._setup(retriever, info, known_users or (lambda ids: np.zeros(len(ids), dtype=bool)), limits)
        service.bundle_dir = None
        return service

    def _setup(self, retriever: Retriever, info: ModelInfo, known_users: Callable[[np.ndarray], np.ndarray],
               limits: ServiceLimits) -> None:
        self.retriever = retriever
        # A generator trained without user features ignores the user: say so in "personalized".
        self.personalises = bool(getattr(retriever, "personalised", True))
        self.info = info
        self.limits = limits
        self._known_users = known_users

    # ---------------------------------------------------------------- parsing
    def parse(self, instances: Any) -> list[SearchRequest]:
        rows = check_batch(instances, self.limits)
        budget = PixelBudget(self.limits)
        return [parse_instance(row, self.info.image_size, self.limits, f"instances[{i}]", budget)
                for i, row in enumerate(rows)]

    # ---------------------------------------------------------------- inference
    def search(self, requests: Sequence[SearchRequest]) -> list[SearchResult]:
        """One retriever call per distinct top_k (a ranking's prefix may depend on k, e.g. in beam search)."""
        if not requests:
            return []
        users = np.array([r.user_id for r in requests], dtype=np.int64)
        known = np.asarray(self._known_users(users), dtype=bool) & self.personalises
        users = np.where(known, users, UNKNOWN_USER)
        results: list[SearchResult | None] = [None] * len(requests)
        for k in sorted({r.top_k for r in requests}):
            rows = [i for i, r in enumerate(requests) if r.top_k == k]
            images = np.stack([requests[i].image for i in rows])
            item_ids, scores, sids = self._rank(images, users[rows], k)
            for j, i in enumerate(rows):
                results[i] = SearchResult(item_ids[j], scores[j], None if sids is None else sids[j], bool(known[i]))
        return results  # type: ignore[return-value]

    def _rank(self, images: np.ndarray, users: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        decode = getattr(self.retriever, "decode", None)
        if self.info.kind == "generator" and decode is not None:
            out = decode(images, users, k)
            return np.asarray(out.item_ids, np.int64), np.asarray(out.scores, np.float32), np.asarray(out.sids, np.int64)
        ranking = self.retriever.retrieve(images, users, k)
        return ranking.item_ids, ranking.scores, None

    def respond(self, result: SearchResult) -> dict[str, Any]:
        items = []
        for j, (item, score) in enumerate(zip(result.item_ids.tolist(), result.scores.tolist())):
            if item < 0:  # padding of a short list
                continue
            sid = None if result.sids is None else [int(c) for c in result.sids[j]]
            items.append({"item_id": int(item), "sid": sid, "score": _finite_or_none(score)})
        return {"items": items, "personalized": result.personalized, "model": self.info.kind,
                "version": self.info.version}

    def predict(self, instances: Any) -> list[dict[str, Any]]:
        """Instances (already unwrapped from their envelope) -> one response dict each."""
        return [self.respond(r) for r in self.search(self.parse(instances))]

    def predict_tensors(self, inputs: Any) -> list[V2Tensor]:
        """Open Inference Protocol input tensors -> typed output tensors."""
        return v2_outputs(self.search(self.parse(v2_instances(inputs, self.limits))))

    def predict_v1(self, body: Any) -> dict[str, Any]:
        return v1_response(self.predict(v1_instances(body)))

    def predict_v2(self, body: Any, model_name: str, request_id: str | None = None) -> dict[str, Any]:
        if not isinstance(body, Mapping) or "inputs" not in body:
            raise BadRequest('request body: expected {"inputs": [...]} (Open Inference Protocol v2)')
        results = self.search(self.parse(v2_instances(body["inputs"], self.limits)))
        return v2_response(results, model_name, self.info, request_id or body.get("id"))
