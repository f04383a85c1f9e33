"""KServe deployment modes and how to tell which one an InferenceService runs in."""
from __future__ import annotations

from enum import Enum
from typing import Any

from serving.canary.errors import CanaryError

MODE_ANNOTATION = "serving.kserve.io/deploymentMode"


class DeploymentMode(str, Enum):
    """KServe's names (0.20+). Knative was called Serverless, Standard was called RawDeployment."""

    KNATIVE = "Knative"
    STANDARD = "Standard"


_KSERVE_NAMES = {
    "Knative": DeploymentMode.KNATIVE,
    "Serverless": DeploymentMode.KNATIVE,
    "Standard": DeploymentMode.STANDARD,
    "RawDeployment": DeploymentMode.STANDARD,
}
CLI_MODES = {"serverless": DeploymentMode.KNATIVE, "raw": DeploymentMode.STANDARD, "auto": None}


def parse_cli_mode(value: str) -> DeploymentMode | None:
    """`serverless` | `raw` | `auto` (None: read it from the InferenceService)."""
    try:
        return CLI_MODES[value.lower()]
    except KeyError:
        raise CanaryError(f"unknown --mode {value!r}; expected one of {', '.join(CLI_MODES)}") from None


def _from_kserve_name(value: str, where: str) -> DeploymentMode:
    try:
        return _KSERVE_NAMES[value]
    except KeyError:
        raise CanaryError(
            f"{where} is {value!r}; the canary tool handles Knative (Serverless) and Standard (RawDeployment) only"
        ) from None


def find_mode(isvc: dict[str, Any]) -> DeploymentMode | None:
    """The mode the controller uses: `status.deploymentMode`, else the annotation; None if neither is set.

    No guess from the cluster default: without either, KServe's choice depends on the
    `inferenceservice-config` ConfigMap, which this tool does not read.
    """
    status_mode = (isvc.get("status") or {}).get("deploymentMode")
    if status_mode:
        return _from_kserve_name(status_mode, "status.deploymentMode")
    annotation = ((isvc.get("metadata") or {}).get("annotations") or {}).get(MODE_ANNOTATION)
    if annotation:
        return _from_kserve_name(annotation, f"annotation {MODE_ANNOTATION}")
    return None


def detect_mode(isvc: dict[str, Any]) -> DeploymentMode:
    mode = find_mode(isvc)
    if mode is None:
        name = (isvc.get("metadata") or {}).get("name", "?")
        raise CanaryError(
            f"cannot tell the deployment mode of InferenceService {name}: it has neither status.deploymentMode "
            f"nor the {MODE_ANNOTATION} annotation; pass --mode serverless or --mode raw"
        )
    return mode


def resolve_mode(requested: DeploymentMode | None, current: dict[str, Any] | None) -> DeploymentMode:
    """The mode to act in; refuses when the requested mode contradicts the live object."""
    if current is None:
        if requested is None:
            raise CanaryError("--mode auto needs the current InferenceService; pass --mode serverless|raw or --current FILE")
        return requested
    actual = find_mode(current)
    if actual is None:
        return detect_mode(current) if requested is None else requested
    if requested is not None and actual is not requested:
        name = current.get("metadata", {}).get("name", "?")
        flag = "serverless" if requested is DeploymentMode.KNATIVE else "raw"
        raise CanaryError(
            f"--mode {flag} was given, but InferenceService {name} runs in {actual.value} mode; "
            "drop --mode or pass the matching one"
        )
    return actual
