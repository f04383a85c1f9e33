"""The one setting that names the project's container image: every KFP component runs in it, and the
InferenceService that `serving.deploy` writes serves with it (the TorchServe handler imports onevision).

Set ``ONEVISION_IMAGE`` before importing `components` (or before `onevision pipeline compile`) to use
another registry or tag; the committed IR in ``pipelines/compiled/`` uses the default. It lives in the core
so that both packages above it read the same fact without importing each other.
"""
from __future__ import annotations

import os

IMAGE_ENV_VAR = "ONEVISION_IMAGE"
DEFAULT_IMAGE = "ghcr.io/onevision/onevision:0.1.0"


def image() -> str:
    """``$ONEVISION_IMAGE``, else the project's release image."""
    return os.environ.get(IMAGE_ENV_VAR) or DEFAULT_IMAGE
