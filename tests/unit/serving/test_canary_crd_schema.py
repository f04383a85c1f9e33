"""Everything the canary tool sends validates against KServe's own InferenceService CRD schema.

The schema is the CRD's `openAPIV3Schema` (vendored, see tests/data/kserve/README.md). A fake API server
stands in for the cluster the way the real one behaves for a custom resource: a patch is a JSON merge patch
(RFC 7386) applied to the stored object, a replace swaps it, and the result is validated against the schema
(422 otherwise) before it is stored. Full rollouts start from the rendered overlays and go through the real
`KServeIsvcClient`, so what is validated is the SDK-serialised body the real client would send.
"""
from __future__ import annotations

import copy
import gzip
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from kubernetes.client import ApiClient

from serving.canary import DeployRequest, DeploymentMode, Target, execute, plan_deploy, plan_promote, plan_rollback
from serving.canary.client import KServeIsvcClient
from serving.canary.mode import MODE_ANNOTATION
from serving.canary.parity import ParityVerdict
from tests.unit.serving.test_manifests import MANIFESTS, NAMESPACES, kustomize, one

SCHEMA = Path(__file__).resolve().parents[2] / "data" / "kserve" / "inferenceservice-v1beta1.openapi.json.gz"
CANARY_URI = "s3://onevision-models/generator/v4"


@cache
def schema() -> dict[str, Any]:
    with gzip.open(SCHEMA, "rt") as handle:
        return json.load(handle)


def schema_errors(obj: dict[str, Any], *, partial: bool = False) -> list[str]:
    """`partial`: a merge patch is a fragment, so `required` does not apply to it; every other rule does."""
    validator_class = jsonschema.Draft7Validator
    if partial:
        validator_class = jsonschema.validators.extend(validator_class, {"required": lambda *_: iter(())})
    validator = validator_class(schema())
    return sorted(f"{'.'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}" for error in validator.iter_errors(obj))


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies `application/merge-patch+json` to a custom resource."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class SchemaError422(RuntimeError):
    """What KServeClient raises (a RuntimeError wrapping the 422 ApiException) for an invalid object."""


class SchemaCheckingKServe:
    """Stands in for kserve.KServeClient over an API server that validates against the CRD schema."""

    def __init__(self, live: dict[str, Any]):
        assert schema_errors(live) == [], "the starting object must be valid"
        self.live, self.sent = live, []
        self.api_instance = self

    def _store(self, obj: dict[str, Any]) -> dict[str, Any]:
        problems = schema_errors(obj)
        if problems:
            raise SchemaError422(f"InferenceService is invalid: {problems}")
        obj.setdefault("metadata", {})["generation"] = (self.live["metadata"].get("generation") or 1) + 1
        self.live = obj
        return obj

    def get(self, name, namespace=None):
        return copy.deepcopy(self.live)

    def patch(self, name, inferenceservice, namespace=None):
        body = ApiClient().sanitize_for_serialization(inferenceservice)
        self.sent.append(("patch", body))
        assert schema_errors(body, partial=True) == []
        return self._store(merge_patch(self.live, body))

    def replace(self, name, inferenceservice, namespace=None):
        body = ApiClient().sanitize_for_serialization(inferenceservice)
        self.sent.append(("replace", body))
        return self._store(body)

    def get_namespaced_custom_object(self, group, version, namespace, plural, name):
        return {"kind": "HTTPRoute", "metadata": {"name": name}}  # the Gateway API route exists


def rendered_isvc(env: str, mode: DeploymentMode) -> dict[str, Any]:
    isvc = one(kustomize(MANIFESTS / "overlays" / env), "InferenceService")
    isvc["metadata"].setdefault("annotations", {})[MODE_ANNOTATION] = mode.value
    isvc["metadata"]["generation"] = 1
    return isvc


def passing_parity(storage_uri: str, parity: str | None) -> ParityVerdict:
    return ParityVerdict(f"{storage_uri}/parity.json", True, {"passed": True})


@pytest.mark.parametrize("env", NAMESPACES)
def test_the_rendered_inference_service_validates_against_the_crd(env):
    isvc = one(kustomize(MANIFESTS / "overlays" / env), "InferenceService")
    assert schema_errors(isvc) == []


@pytest.mark.parametrize("mode", list(DeploymentMode))
@pytest.mark.parametrize("env", NAMESPACES)
@pytest.mark.parametrize("finish", ["promote", "rollback"])
def test_a_whole_canary_rollout_sends_only_valid_objects(env, mode, finish):
    fake = SchemaCheckingKServe(rendered_isvc(env, mode))
    client = KServeIsvcClient(kserve_factory=lambda: fake)
    target = Target(fake.live["metadata"]["name"], NAMESPACES[env])
    stable_uri = fake.live["spec"]["predictor"]["model"]["storageUri"]

    for percent in (0, 10, 50):  # a dark canary, then two re-weights of the same model
        execute(plan_deploy(target, DeployRequest(CANARY_URI, percent), mode, client.get(target.name, target.namespace),
                            route_exists=True), client)
    control = {"mode": "all", "url": "http://onevision-events/?arm=control"}
    canary = {"mode": "all", "url": "http://onevision-events/?arm=canary"}
    if mode is DeploymentMode.STANDARD:  # both arms log to the sink, the canary tagged as such
        assert fake.live["spec"]["predictor"]["logger"] == control
        assert [c["predictor"]["logger"] for c in fake.live["spec"]["canary"]] == [canary]
    else:  # the latest revision (the canary) logs as the canary; the rolled-out one keeps its own spec
        assert fake.live["spec"]["predictor"]["logger"] == canary
    if finish == "promote":
        action, _ = plan_promote(target, mode, client.get(target.name, target.namespace), parity_gate=passing_parity)
        execute(action, client)
        expected_uri = CANARY_URI
    else:
        execute(plan_rollback(target, mode, client.get(target.name, target.namespace)), client)
        expected_uri = stable_uri

    assert [verb for verb, _ in fake.sent] == ["patch"] * 3 + (["replace"] if finish == "promote" else ["patch"])
    predictor = fake.live["spec"]["predictor"]
    if mode is DeploymentMode.KNATIVE:  # a rollback keeps the canary's revision spec at 0% (the previous one serves)
        assert predictor["model"]["storageUri"] == CANARY_URI
        assert predictor.get("canaryTrafficPercent") == (None if finish == "promote" else 0)
        assert predictor["logger"] == (control if finish == "promote" else canary)
    else:
        assert predictor["logger"] == control
        assert predictor["model"]["storageUri"] == expected_uri
        assert not fake.live["spec"].get("canary")


def test_a_standard_canary_without_the_model_container_name_is_rejected():
    """The defect the schema check exists for: KServe's CRD requires spec.canary[].predictor.model.name."""
    isvc = rendered_isvc("production", DeploymentMode.STANDARD)
    patch = plan_deploy(Target("onevision", "onevision"), DeployRequest(CANARY_URI, 10), DeploymentMode.STANDARD,
                        isvc, route_exists=True).body
    del patch["spec"]["canary"][0]["predictor"]["model"]["name"]
    problems = schema_errors(merge_patch(isvc, patch))
    assert any(p.startswith("spec.canary.0.predictor.model") and "'name' is a required property" in p for p in problems)


def test_a_wrong_type_in_a_patch_is_rejected_even_as_a_fragment():
    assert schema_errors({"spec": {"predictor": {"canaryTrafficPercent": "ten"}}}, partial=True)
    assert schema_errors({"spec": {"predictor": {"canaryTrafficPercent": 10}}}, partial=True) == []
