"""Pure builders of what the canary tool sends to the cluster, following KServe 0.21.

Knative mode (revision-based, `spec.predictor.canaryTrafficPercent`):
  deploy   merge patch: new `model.storageUri` (a new revision) + `canaryTrafficPercent: P`; the new
           revision gets P%, the last rolled-out revision the rest (tag `prev`; `latest` with tag routing).
           With a payload logger the new revision's sink URL says `?arm=canary`.
  promote  replace: the same object without `canaryTrafficPercent` (a merge patch cannot unset it), so the
           latest revision gets 100% and becomes the rolled-out one; a payload logger's URL goes back to
           `?arm=control` (one more revision of the same model, so the sink files it as the stable arm).
  rollback merge patch: `canaryTrafficPercent: 0`; the previous rolled-out revision keeps all traffic.

Standard mode (RawDeployment; `spec.canary[]`, added in KServe 0.20): `canaryTrafficPercent` is ignored
there. A canary is a second Deployment/Service `{isvc}-{canary}-predictor` built from the stable
predictor overlaid with `canary[].predictor`; the split is applied only by the Gateway API HTTPRoute
`{isvc}-predictor` (weights stable 100-P / canary P), never by a Kubernetes Ingress.
  deploy   merge patch: `spec.canary: [{predictor: {name, model}, trafficPercent: P}]`.
  promote  replace: `predictor.name` and `predictor.model` taken from the canary, the canary entry removed;
           the canary's Deployment becomes the stable one without a restart.
  rollback merge patch: `spec.canary: []`; the canary Deployment is deleted, the stable one keeps serving.
"""
from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from serving.canary.errors import CanaryError, TrafficSplitUnavailableError
from serving.canary.mode import DeploymentMode
from serving.canary.sdk import ISVC_API_VERSION, ISVC_KIND

TAG_ROUTING_ANNOTATION = "serving.kserve.io/enable-tag-routing"
KSERVE_CONTAINER = "kserve-container"  # the predictor container name KServe uses when none is given
CANARY_NAME_PATTERN = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")  # KServe's pattern for predictor.name
LOGGER_ARM_PARAM = "arm"  # the event sink reads a logged event's arm from its URL (monitoring/events/arms.py)
CANARY_NAME_MAX = 24  # keeps {isvc}-{canary}-predictor within a 63-character Service name


@dataclass(frozen=True)
class DeployRequest:
    storage_uri: str
    percent: int
    tag_routing: bool = False
    canary_name: str | None = None  # Standard mode; default derived from the storage URI
    canary_replicas: int | None = None  # Standard mode; default: KServe's ceil(stable * P / 100), 1 at P=0

    def __post_init__(self) -> None:
        if not 0 <= self.percent <= 100:
            raise CanaryError(f"--percent must be within 0..100, got {self.percent}")
        if "://" not in self.storage_uri:
            raise CanaryError(f"storage URI {self.storage_uri!r} has no scheme; expected e.g. s3://bucket/generator/v3")
        if self.canary_name is not None and not (
            CANARY_NAME_PATTERN.match(self.canary_name) and len(self.canary_name) <= CANARY_NAME_MAX
        ):
            raise CanaryError(
                f"canary name {self.canary_name!r} must match {CANARY_NAME_PATTERN.pattern} "
                f"and have at most {CANARY_NAME_MAX} characters"
            )
        if self.canary_replicas is not None and self.canary_replicas < 1:
            raise CanaryError(f"--canary-replicas must be at least 1, got {self.canary_replicas}")


def canary_name_for(storage_uri: str) -> str:
    """A valid, deterministic `predictor.name` for a model, e.g. `v3-5d41a4` for `s3://b/generator/v3`.

    The same URI always gives the same name, so deploying it again only changes its traffic.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", storage_uri.rstrip("/").rsplit("/", 1)[-1].lower()).strip("-")
    if not slug or not slug[0].isalpha():
        slug = f"m{slug}" if slug else "m"
    digest = hashlib.sha1(storage_uri.encode()).hexdigest()[:6]
    return f"{slug[: CANARY_NAME_MAX - 7].rstrip('-')}-{digest}"


def _envelope(name: str, namespace: str) -> dict[str, Any]:
    return {"apiVersion": ISVC_API_VERSION, "kind": ISVC_KIND, "metadata": {"name": name, "namespace": namespace}}


def _predictor(isvc: dict[str, Any]) -> dict[str, Any]:
    predictor = (isvc.get("spec") or {}).get("predictor")
    if not isinstance(predictor, dict):
        raise CanaryError(f"InferenceService {_name(isvc)} has no spec.predictor")
    return predictor


def _model(predictor: dict[str, Any], where: str) -> dict[str, Any]:
    model = predictor.get("model")
    if not isinstance(model, dict) or not model.get("storageUri"):
        raise CanaryError(
            f"{where} has no model.storageUri; the canary tool needs the `model:` form "
            "(modelFormat + storageUri), as in manifests/base/inferenceservice.yaml"
        )
    return model


def _name(isvc: dict[str, Any]) -> str:
    return (isvc.get("metadata") or {}).get("name", "?")


def _canaries(isvc: dict[str, Any]) -> list[dict[str, Any]]:
    return list((isvc.get("spec") or {}).get("canary") or [])


def select_canary(isvc: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    """The Standard-mode canary entry to act on: the one named, or the only one."""
    canaries = _canaries(isvc)
    names = [c.get("predictor", {}).get("name", "?") for c in canaries]
    if not canaries:
        raise CanaryError(f"InferenceService {_name(isvc)} has no canary (spec.canary is empty); nothing to promote")
    if name is not None:
        for canary, canary_name in zip(canaries, names):
            if canary_name == name:
                return canary
        raise CanaryError(f"no canary named {name!r} in InferenceService {_name(isvc)}; it has: {', '.join(names)}")
    if len(canaries) > 1:
        raise CanaryError(f"InferenceService {_name(isvc)} has several canaries ({', '.join(names)}); pass --canary NAME")
    return canaries[0]


def deploy_patch(
    mode: DeploymentMode, request: DeployRequest, *, name: str, namespace: str, current: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The merge patch that starts (or re-weights) a canary of `request.storage_uri`.

    `current` is the live object; Standard mode needs it (the canary copies the stable model spec),
    Knative mode uses it, when given, to refuse a deploy that would not split traffic.
    """
    if mode is DeploymentMode.KNATIVE:
        return _knative_deploy_patch(request, name, namespace, current)
    if current is None:
        raise CanaryError("a Standard-mode canary copies the stable predictor's model spec; the current InferenceService is needed")
    return _standard_deploy_patch(request, name, namespace, current)


def _knative_deploy_patch(
    request: DeployRequest, name: str, namespace: str, current: dict[str, Any] | None
) -> dict[str, Any]:
    if current is not None:
        predictor = _predictor(current)
        serving_uri = _model(predictor, f"InferenceService {name} predictor")["storageUri"]
        in_progress = predictor.get("canaryTrafficPercent")
        if in_progress is None and serving_uri == request.storage_uri:
            raise CanaryError(f"InferenceService {name} already serves {request.storage_uri} with all traffic; nothing to deploy")
        if in_progress and serving_uri != request.storage_uri:
            raise CanaryError(
                f"a canary of {serving_uri} is in progress at {in_progress}%; promote or roll it back "
                f"before deploying {request.storage_uri}"
            )
        predictor_status = ((current.get("status") or {}).get("components") or {}).get("predictor") or {}
        if current.get("status") and not predictor_status.get("latestRolledoutRevision") and request.percent < 100:
            raise TrafficSplitUnavailableError(
                f"InferenceService {name} has no rolled-out revision yet (status.components.predictor."
                "latestRolledoutRevision is empty), so KServe would send 100% to the new revision, not "
                f"{request.percent}%; wait until it is ready, then deploy the canary"
            )
    patch = _envelope(name, namespace)
    if request.tag_routing:
        patch["metadata"]["annotations"] = {TAG_ROUTING_ANNOTATION: "true"}
    patch["spec"] = {"predictor": {"canaryTrafficPercent": request.percent, "model": {"storageUri": request.storage_uri}}}
    logger = ((current or {}).get("spec") or {}).get("predictor", {}).get("logger")
    if logger:  # the new revision logs as the canary; the rolled-out one keeps its own spec (arm=control)
        patch["spec"]["predictor"]["logger"] = canary_logger(logger)
    return patch


def _standard_deploy_patch(request: DeployRequest, name: str, namespace: str, current: dict[str, Any]) -> dict[str, Any]:
    if request.tag_routing:
        raise CanaryError(
            "--tag-routing is a Knative feature (latest-/prev- revision URLs); in Standard mode smoke-test the "
            f"canary through its own Service {name}-<canary>-predictor, e.g. with --percent 0 first"
        )
    predictor = _predictor(current)
    stable_model = _model(predictor, f"InferenceService {name} predictor")
    if stable_model["storageUri"] == request.storage_uri:
        raise CanaryError(f"{request.storage_uri} is already the stable model of InferenceService {name}; nothing to deploy")
    canary_name = request.canary_name or canary_name_for(request.storage_uri)
    if canary_name == predictor.get("name"):
        raise CanaryError(f"canary name {canary_name!r} is the stable predictor's name; pass another --canary-name")
    others = [c.get("predictor", {}).get("name") for c in _canaries(current)]
    others = [other for other in others if other != canary_name]
    if others:
        raise CanaryError(
            f"canary {', '.join(map(str, others))} is already deployed on InferenceService {name}; "
            f"promote or roll it back before deploying {request.storage_uri}"
        )
    replicas = request.canary_replicas or (1 if request.percent == 0 else None)
    stable_min = predictor.get("minReplicas", 1)
    if replicas is not None and replicas > stable_min:
        raise CanaryError(
            f"KServe requires canary minReplicas ({replicas}) <= the stable predictor's minReplicas ({stable_min})"
        )
    canary_predictor: dict[str, Any] = {"name": canary_name}
    if replicas is not None:
        canary_predictor["minReplicas"] = replicas
    # KServe's CRD (spec.canary, kserve#5672) requires the canary's model container name; KServe's own default
    # for the predictor container is "kserve-container"
    canary_predictor["model"] = {"name": KSERVE_CONTAINER, **copy.deepcopy(stable_model), "storageUri": request.storage_uri}
    if predictor.get("logger"):
        canary_predictor["logger"] = canary_logger(predictor["logger"])
    patch = _envelope(name, namespace)
    patch["spec"] = {"canary": [{"predictor": canary_predictor, "trafficPercent": request.percent}]}
    return patch


def tagged_logger(logger: dict[str, Any], arm: str) -> dict[str, Any]:
    """A payload logger whose sink URL says `?arm=<arm>`, so the sink files that model's events under its arm."""
    logger = copy.deepcopy(logger)
    if logger.get("url"):
        parts = urlsplit(logger["url"])
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != LOGGER_ARM_PARAM]
        logger["url"] = urlunsplit(parts._replace(query=urlencode([*query, (LOGGER_ARM_PARAM, arm)])))
    return logger


def canary_logger(stable_logger: dict[str, Any]) -> dict[str, Any]:
    """The stable predictor's payload logger for a canary (KServe would copy the stable one, `?arm=control`
    included, and the sink would file the canary's events as the control's)."""
    return tagged_logger(stable_logger, "canary")


def _without_server_fields(isvc: dict[str, Any]) -> dict[str, Any]:
    """The object as a client would replace it: no status, no managedFields (resourceVersion stays,
    so a replace after someone else's change fails instead of overwriting it)."""
    body = copy.deepcopy(isvc)
    body.pop("status", None)
    body.get("metadata", {}).pop("managedFields", None)
    return body


def promoted_storage_uri(mode: DeploymentMode, current: dict[str, Any], canary: str | None = None) -> str:
    """The model that `promote_object` would give all traffic (the one the parity gate must cover)."""
    if mode is DeploymentMode.KNATIVE:
        predictor = _predictor(current)
        if "canaryTrafficPercent" not in predictor:
            raise CanaryError(
                f"InferenceService {_name(current)} has no canary in progress (predictor.canaryTrafficPercent "
                "is not set): its latest revision already gets all traffic; nothing to promote"
            )
        return _model(predictor, f"InferenceService {_name(current)} predictor")["storageUri"]
    entry = select_canary(current, canary)
    return _model(entry.get("predictor") or {}, f"canary {entry.get('predictor', {}).get('name')!r}")["storageUri"]


def promote_object(mode: DeploymentMode, current: dict[str, Any], *, canary: str | None = None) -> dict[str, Any]:
    """The whole object to `replace` the live one with, so the canary gets all traffic."""
    promoted_storage_uri(mode, current, canary)  # refuses when there is nothing to promote
    body = _without_server_fields(current)
    spec = body["spec"]
    if mode is DeploymentMode.KNATIVE:
        del spec["predictor"]["canaryTrafficPercent"]
        if spec["predictor"].get("logger"):  # the promoted revision is the stable arm from now on
            spec["predictor"]["logger"] = tagged_logger(spec["predictor"]["logger"], "control")
        return body
    entry = select_canary(current, canary)
    spec["predictor"]["name"] = entry["predictor"]["name"]
    spec["predictor"]["model"] = copy.deepcopy(entry["predictor"]["model"])
    remaining = [c for c in spec["canary"] if c.get("predictor", {}).get("name") != entry["predictor"]["name"]]
    if remaining:
        spec["canary"] = remaining
    else:
        del spec["canary"]
    return body


def rollback_patch(mode: DeploymentMode, *, name: str, namespace: str) -> dict[str, Any]:
    """The merge patch that gives the stable model all traffic again."""
    patch = _envelope(name, namespace)
    if mode is DeploymentMode.KNATIVE:
        patch["spec"] = {"predictor": {"canaryTrafficPercent": 0}}
    else:
        patch["spec"] = {"canary": []}
    return patch


def check_rollback(mode: DeploymentMode, current: dict[str, Any]) -> None:
    """Refuse a rollback when no canary is in progress (a 0% would then pin nothing)."""
    if mode is DeploymentMode.KNATIVE:
        if "canaryTrafficPercent" not in _predictor(current):
            raise CanaryError(
                f"InferenceService {_name(current)} has no canary in progress (predictor.canaryTrafficPercent is "
                "not set); nothing to roll back"
            )
    elif not _canaries(current):
        raise CanaryError(f"InferenceService {_name(current)} has no canary (spec.canary is empty); nothing to roll back")
