"""One search request instance -> a validated `SearchRequest` with its image decoded at the model's size;
`BadRequest` (400/413) naming the field otherwise (docs/contracts.md, "Inference protocol")."""
from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from onevision.service.limits import ServiceLimits
from onevision.service.protocol import INSTANCE_FIELDS, INT64_MAX, INT64_MIN, UNKNOWN_USER, BadRequest, is_int


@dataclass(frozen=True)
class SearchRequest:
    """One validated instance: a decoded image at the model's size, a user id (-1: none) and k."""

    image: np.ndarray  # uint8 (S, S, 3)
    user_id: int
    top_k: int


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
    elif not is_int(user_id):
        raise BadRequest(f"{where}.user_id: expected an integer, got {type(user_id).__name__} {user_id!r}")
    elif not INT64_MIN <= user_id <= INT64_MAX:
        raise BadRequest(f"{where}.user_id: {user_id} does not fit a 64-bit signed integer (user ids are INT64)")
    top_k = instance.get("top_k")
    if top_k is None:
        top_k = limits.default_top_k
    elif not is_int(top_k):
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
