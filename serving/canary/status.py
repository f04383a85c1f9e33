"""What an InferenceService's rollout looks like, read from its status (and, in Standard mode, its
HTTPRoute), so the tool reports the split that actually happens rather than the one asked for."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from serving.canary.mode import DeploymentMode

REVISION_FIELDS = ("latestCreatedRevision", "latestReadyRevision", "latestRolledoutRevision", "previousRolledoutRevision")
HTTPROUTE_GROUP, HTTPROUTE_VERSION, HTTPROUTE_PLURAL = "gateway.networking.k8s.io", "v1", "httproutes"


def predictor_route_name(isvc_name: str) -> str:
    """KServe names the predictor's HTTPRoute `{isvc}-predictor`, whatever `predictor.name` is."""
    return f"{isvc_name}-predictor"


def predictor_service_name(isvc_name: str, predictor_name: str | None = None) -> str:
    return f"{isvc_name}-{predictor_name}-predictor" if predictor_name else f"{isvc_name}-predictor"


@dataclass(frozen=True)
class TrafficShare:
    target: str  # Knative revision or Kubernetes Service
    percent: int
    tag: str | None = None
    latest: bool | None = None
    url: str | None = None


@dataclass(frozen=True)
class CanaryState:
    name: str
    storage_uri: str | None
    requested_percent: int
    ready: bool | None  # None: the controller has not reported it yet


@dataclass(frozen=True)
class RolloutStatus:
    name: str
    namespace: str
    mode: DeploymentMode
    ready: bool
    generation: int | None
    observed_generation: int | None
    storage_uri: str | None  # Knative: the latest revision's model; Standard: the stable predictor's
    canary_traffic_percent: int | None  # Knative spec field
    revisions: dict[str, str] = field(default_factory=dict)
    traffic: tuple[TrafficShare, ...] = ()
    canaries: tuple[CanaryState, ...] = ()
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["mode"] = self.mode.value
        return data


def _ready(isvc: dict[str, Any]) -> bool:
    for condition in (isvc.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return str(condition.get("status", "")).lower() == "true"
    return False


def read_status(
    isvc: dict[str, Any], mode: DeploymentMode, route: dict[str, Any] | None = None, route_known: bool = True
) -> RolloutStatus:
    """`route` is the `{isvc}-predictor` HTTPRoute (Standard mode), None if it does not exist;
    `route_known=False` when it was not looked up (offline)."""
    metadata = isvc.get("metadata") or {}
    status = isvc.get("status") or {}
    predictor = (isvc.get("spec") or {}).get("predictor") or {}
    predictor_status = (status.get("components") or {}).get("predictor") or {}
    name = metadata.get("name", "?")
    common = dict(
        name=name,
        namespace=metadata.get("namespace", "?"),
        mode=mode,
        ready=_ready(isvc),
        generation=metadata.get("generation"),
        observed_generation=status.get("observedGeneration"),
        storage_uri=(predictor.get("model") or {}).get("storageUri"),
        canary_traffic_percent=predictor.get("canaryTrafficPercent"),
        revisions={key: predictor_status[key] for key in REVISION_FIELDS if predictor_status.get(key)},
    )
    if mode is DeploymentMode.KNATIVE:
        traffic = tuple(
            TrafficShare(
                target=t.get("revisionName") or "?",
                percent=int(t.get("percent") or 0),
                tag=t.get("tag"),
                latest=t.get("latestRevision"),
                url=t.get("url"),
            )
            for t in predictor_status.get("traffic") or []
        )
        notes = () if traffic else ("no traffic targets in status.components.predictor.traffic yet",)
        return RolloutStatus(**common, traffic=traffic, notes=notes)
    return _standard_status(isvc, predictor, common, route, route_known)


def _standard_status(
    isvc: dict[str, Any], predictor: dict[str, Any], common: dict[str, Any], route: dict[str, Any] | None, route_known: bool
) -> RolloutStatus:
    name = common["name"]
    reported = {c.get("name"): c for c in (isvc.get("status") or {}).get("canaryStatuses") or []}
    canaries = tuple(
        CanaryState(
            name=entry.get("predictor", {}).get("name", "?"),
            storage_uri=(entry.get("predictor", {}).get("model") or {}).get("storageUri"),
            requested_percent=int(entry.get("trafficPercent", 0)),
            ready=reported.get(entry.get("predictor", {}).get("name"), {}).get("ready"),
        )
        for entry in (isvc.get("spec") or {}).get("canary") or []
    )
    notes: list[str] = []
    if common["canary_traffic_percent"] is not None:
        notes.append(
            f"spec.predictor.canaryTrafficPercent={common['canary_traffic_percent']} is ignored in Standard mode: "
            "it splits no traffic"
        )
    stable = predictor_service_name(name, predictor.get("name"))
    route_name = predictor_route_name(name)
    traffic: tuple[TrafficShare, ...] = ()
    if not route_known:
        notes.append(f"traffic split not read: HTTPRoute {route_name} was not looked up (offline)")
    elif route is None:
        traffic = (TrafficShare(target=stable, percent=100),)
        if canaries:
            notes.append(
                f"no Gateway API HTTPRoute {route_name}: KServe 0.21 splits Standard-mode traffic only there, "
                "so the canaries get no ingress traffic (reach them through their own Services)"
            )
    else:
        rules = (route.get("spec") or {}).get("rules") or [{}]
        refs = rules[0].get("backendRefs") or []
        weights = [int(ref.get("weight", 1)) for ref in refs]  # Gateway API's default weight is 1
        total = sum(weights) or 1
        traffic = tuple(
            TrafficShare(target=ref.get("name", "?"), percent=round(100 * weight / total))
            for ref, weight in zip(refs, weights)
        )
    return RolloutStatus(**common, traffic=traffic, canaries=canaries, notes=tuple(notes))


def render_status(status: RolloutStatus) -> str:
    lines = [
        f"InferenceService {status.name} (namespace {status.namespace}), {status.mode.value} mode",
        f"  ready: {status.ready}  generation: {status.generation}  observed: {status.observed_generation}",
    ]
    if status.mode is DeploymentMode.KNATIVE:
        lines.append(f"  latest revision model: {status.storage_uri}")
        percent = "unset (latest revision gets 100%)" if status.canary_traffic_percent is None else f"{status.canary_traffic_percent}%"
        lines.append(f"  canaryTrafficPercent: {percent}")
        for key, value in status.revisions.items():
            lines.append(f"  {key}: {value}")
    else:
        lines.append(f"  stable model: {status.storage_uri}")
        for canary in status.canaries:
            ready = "not reported" if canary.ready is None else str(canary.ready)
            lines.append(
                f"  canary {canary.name}: {canary.storage_uri}, requested {canary.requested_percent}%, ready: {ready}"
            )
    if status.traffic:
        lines.append("  traffic:")
        for share in status.traffic:
            extra = "".join(
                f"  {label}: {value}"
                for label, value in (("tag", share.tag), ("latest", share.latest), ("url", share.url))
                if value is not None
            )
            lines.append(f"    {share.percent:>3}%  {share.target}{extra}")
    lines.extend(f"  note: {note}" for note in status.notes)
    return "\n".join(lines)
