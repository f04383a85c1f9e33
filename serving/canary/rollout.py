"""Rollout steps: plan what to send (pure, given the current object), then send it through a client."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from serving.canary.client import IsvcClient
from serving.canary.errors import TrafficSplitUnavailableError
from serving.canary.mode import DeploymentMode
from serving.canary.parity import ParityVerdict, require_passing_parity
from serving.canary.patches import (
    DeployRequest,
    check_rollback,
    deploy_patch,
    promote_object,
    promoted_storage_uri,
    rollback_patch,
)
from serving.canary.status import predictor_route_name, predictor_service_name


@dataclass(frozen=True)
class Target:
    name: str
    namespace: str


@dataclass(frozen=True)
class Action:
    """One call to the cluster: a JSON merge patch or a whole-object replace of the InferenceService."""

    verb: Literal["patch", "replace"]
    target: Target
    mode: DeploymentMode
    body: dict[str, Any]
    summary: str
    notes: tuple[str, ...] = ()

    def render(self) -> str:
        """The exact body as YAML, headed by comments saying which call would send it."""
        call = "KServeClient.patch (JSON merge patch)" if self.verb == "patch" else "KServeClient.replace"
        header = [
            f"# {call} of InferenceService {self.target.name} in namespace {self.target.namespace} ({self.mode.value} mode)",
            f"# {self.summary}",
            *(f"# note: {note}" for note in self.notes),
        ]
        return "\n".join(header) + "\n" + yaml.safe_dump(self.body, sort_keys=False, default_flow_style=False)


def plan_deploy(
    target: Target,
    request: DeployRequest,
    mode: DeploymentMode,
    current: dict[str, Any] | None,
    route_exists: bool | None = None,
) -> Action:
    """`route_exists`: whether the `{isvc}-predictor` HTTPRoute exists (Standard mode); None if not looked up."""
    body = deploy_patch(mode, request, name=target.name, namespace=target.namespace, current=current)
    if mode is DeploymentMode.KNATIVE:
        summary = (
            f"new revision with {request.storage_uri} gets {request.percent}%, "
            f"the last rolled-out revision {100 - request.percent}%"
        )
        notes = ("smoke-test URLs: latest-/prev- tags, see `status`",) if request.tag_routing else ()
        return Action("patch", target, mode, body, summary, notes)
    canary = body["spec"]["canary"][0]["predictor"]["name"]
    service = predictor_service_name(target.name, canary)
    route = predictor_route_name(target.name)
    notes: tuple[str, ...] = ()
    if request.percent > 0 and route_exists is False:
        raise TrafficSplitUnavailableError(
            f"InferenceService {target.name} runs in Standard (RawDeployment) mode, where canaryTrafficPercent is "
            f"ignored and KServe 0.21 splits canary traffic only through the Gateway API HTTPRoute {route}; that "
            f"route does not exist in namespace {target.namespace} (the cluster uses a Kubernetes Ingress or none), "
            f"so a {request.percent}% split would not happen. Enable the Gateway API in KServe's ingress config, "
            f"switch the InferenceService to Knative mode, or deploy a dark canary with --percent 0 and test it "
            f"through its Service {service}"
        )
    if request.percent > 0 and route_exists is None:
        notes = (f"not checked offline: the split needs the Gateway API HTTPRoute {route}",)
    summary = (
        f"canary Deployment/Service {service} with {request.storage_uri} gets {request.percent}% "
        f"(HTTPRoute {route} weights), the stable predictor {100 - request.percent}%"
    )
    return Action("patch", target, mode, body, summary, notes)


def plan_promote(
    target: Target,
    mode: DeploymentMode,
    current: dict[str, Any],
    *,
    parity: str | None = None,
    canary: str | None = None,
    parity_gate: Callable[[str, str | None], ParityVerdict] = require_passing_parity,
) -> tuple[Action, ParityVerdict]:
    storage_uri = promoted_storage_uri(mode, current, canary)
    verdict = parity_gate(storage_uri, parity)
    body = promote_object(mode, current, canary=canary)
    if mode is DeploymentMode.KNATIVE:
        summary = f"canaryTrafficPercent removed: the latest revision ({storage_uri}) gets 100%"
    else:
        summary = f"canary {body['spec']['predictor']['name']} ({storage_uri}) becomes the stable predictor with 100%"
    return Action("replace", target, mode, body, summary, (f"parity report {verdict.location}: passed",)), verdict


def plan_rollback(target: Target, mode: DeploymentMode, current: dict[str, Any] | None) -> Action:
    if current is not None:
        check_rollback(mode, current)
    body = rollback_patch(mode, name=target.name, namespace=target.namespace)
    if mode is DeploymentMode.KNATIVE:
        summary = "canaryTrafficPercent 0: the previous rolled-out revision gets 100%, the canary revision 0%"
    else:
        summary = "spec.canary emptied: canary Deployments are deleted, the stable predictor gets 100%"
    return Action("patch", target, mode, body, summary)


def execute(action: Action, client: IsvcClient) -> dict[str, Any]:
    if action.verb == "replace":
        return client.replace(action.target.name, action.target.namespace, action.body)
    return client.patch(action.target.name, action.target.namespace, action.body)

