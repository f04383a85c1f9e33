"""Every limit a search request is held to, defined once: the TorchServe handler (ONEVISION_<FIELD>), the
kserve server (one flag per field), `onevision serve kserve` and TorchServe's config.properties read it."""
from __future__ import annotations

import math
from dataclasses import dataclass


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
