"""Which arm (control | canary) and model version an inference event belongs to.

KServe's logger says nothing about canaries by itself: its `endpoint` extension is the pod's `endpoint`
label, which KServe's current controllers leave empty (older Knative-mode releases set "default" /
"canary"). So the arm is read, in order, from
1. the sink URL's query parameter (`?arm=canary`): the manifests point the stable predictor's logger at
   `...?arm=control` and `onevision canary deploy` points a Standard-mode canary's logger at `...?arm=canary`;
2. the CloudEvent extension `extension` (default `endpoint`): a value in `canary_values` means canary;
3. otherwise `default_arm` (control).
The model version comes from the `model_version` query parameter, else from a v2 response body's
`model_version`, else "unknown".
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from monitoring.events.errors import EventRejected
from monitoring.events.schema import ARMS, UNKNOWN_VERSION

ARM_PARAM = "arm"
VERSION_PARAM = "model_version"
_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")


@dataclass(frozen=True)
class ArmMapping:
    extension: str = "endpoint"
    canary_values: tuple[str, ...] = ("canary",)
    default_arm: str = "control"

    def arm(self, params: Mapping[str, str], attributes: Mapping[str, Any]) -> str:
        explicit = params.get(ARM_PARAM)
        if explicit is not None:
            if explicit not in ARMS:
                raise EventRejected("bad_arm", f"query parameter {ARM_PARAM}={explicit!r}: expected one of {', '.join(ARMS)}")
            return explicit
        value = attributes.get(self.extension)
        return "canary" if value is not None and str(value) in self.canary_values else self.default_arm


def model_version(params: Mapping[str, str], body: Any) -> str:
    """A path-safe version: characters outside [A-Za-z0-9.-] become '-'; no leading '.' (readers skip those)."""
    raw = params.get(VERSION_PARAM)
    if raw is None and isinstance(body, dict) and isinstance(body.get("model_version"), (str, int)):
        raw = str(body["model_version"])
    safe = _UNSAFE.sub("-", raw or "").lstrip(".-")
    return safe or UNKNOWN_VERSION
