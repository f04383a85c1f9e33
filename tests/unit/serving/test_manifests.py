"""Kustomize overlays render to valid objects: core kinds against the Kubernetes schema
(kubernetes-validate), the InferenceService against the KServe SDK models (strict checker)."""
from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from serving.canary.sdk import SchemaError, check_inference_service

MANIFESTS = Path(__file__).resolve().parents[3] / "manifests"
NAMESPACES = {"dev": "onevision-dev", "production": "onevision"}
K8S_VERSION = "1.32"  # the installed kubectl's minor; kubernetes-validate ships its schemas
PROJECT_IMAGE = "ghcr.io/onevision/onevision"
S3_ANNOTATIONS = {"serving.kserve.io/s3-endpoint", "serving.kserve.io/s3-usehttps", "serving.kserve.io/s3-region"}


def kustomize(path: Path) -> list[dict[str, Any]]:
    done = subprocess.run(["kubectl", "kustomize", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"kubectl kustomize {path} failed:\n{done.stderr}"
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {env: kustomize(MANIFESTS / "overlays" / env) for env in NAMESPACES}


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [doc for doc in docs if doc["kind"] == kind and name in (None, doc["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def predictor(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return one(docs, "InferenceService")["spec"]["predictor"]


def cpu_millis(quantity: str) -> float:
    return float(quantity[:-1]) if quantity.endswith("m") else float(quantity) * 1000


@pytest.mark.parametrize("env", NAMESPACES)
def test_overlay_renders_the_serving_and_monitoring_objects(rendered, env):
    kinds = sorted(doc["kind"] for doc in rendered[env])
    assert kinds == ["ConfigMap", "CronJob", "Deployment", "InferenceService", "Namespace", "NetworkPolicy", "NetworkPolicy",
                     "Service", "ServiceAccount"]


@pytest.mark.parametrize("env", NAMESPACES)
def test_every_object_lives_in_the_overlay_namespace(rendered, env):
    namespace = NAMESPACES[env]
    assert one(rendered[env], "Namespace")["metadata"]["name"] == namespace
    assert {doc["metadata"].get("namespace") for doc in rendered[env] if doc["kind"] != "Namespace"} == {namespace}


@pytest.mark.parametrize("env", NAMESPACES)
def test_cronjob_runs_the_drift_report_with_the_project_image(rendered, env):
    cronjob = one(rendered[env], "CronJob")
    container = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"{PROJECT_IMAGE}:0.1.0"
    assert container["command"] + container["args"][:2] == ["onevision", "drift", "report"]
    assert len(cronjob["spec"]["schedule"].split()) == 5


def test_project_image_is_named_in_one_file_only():
    naming = [p.relative_to(MANIFESTS).as_posix() for p in MANIFESTS.rglob("*.yaml") if PROJECT_IMAGE in p.read_text()]
    assert naming == ["base/kustomization.yaml"]


@pytest.mark.parametrize("env", NAMESPACES)
def test_no_secret_or_credential_is_rendered(rendered, env):
    assert not [doc for doc in rendered[env] if doc["kind"] == "Secret"]
    for doc in rendered[env]:
        assert "stringData" not in doc
        assert not [key for key in doc.get("data") or {} if "secret" in key.lower() or "access_key" in key.lower()]
    service_account = one(rendered[env], "ServiceAccount")
    assert service_account["secrets"] == [{"name": "onevision-s3"}]
    assert predictor(rendered[env])["serviceAccountName"] == service_account["metadata"]["name"]


def test_shipped_s3_env_example_holds_placeholders_only():
    values = [line.split("=", 1)[1] for line in (MANIFESTS / "secrets/s3.example.env").read_text().splitlines()
              if line and not line.startswith("#")]
    assert values and set(values) == {"REPLACE_ME"}


@pytest.mark.parametrize("env", NAMESPACES)
def test_s3_secret_kustomization_carries_kserve_s3_annotations(tmp_path, env):
    secrets = shutil.copytree(MANIFESTS / "secrets", tmp_path / "secrets")
    shutil.copy(secrets / "s3.example.env", secrets / env / "s3.env")
    secret = one(kustomize(secrets / env), "Secret")
    assert secret["metadata"]["name"] == "onevision-s3"
    assert secret["metadata"]["namespace"] == NAMESPACES[env]
    assert S3_ANNOTATIONS <= set(secret["metadata"]["annotations"])
    assert set(secret["data"]) == {"awsAccessKeyID", "awsSecretAccessKey"}


@pytest.mark.parametrize("env", NAMESPACES)
def test_core_objects_validate_against_the_kubernetes_schema(rendered, env):
    for doc in rendered[env]:
        if doc["kind"] != "InferenceService":
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.parametrize("env", NAMESPACES)
def test_inference_service_round_trips_through_the_kserve_sdk(rendered, env):
    isvc = check_inference_service(one(rendered[env], "InferenceService"))
    spec = isvc.spec.predictor
    assert type(isvc).__name__ == "V1beta1InferenceService" and isvc.metadata.name == "onevision"
    assert (spec.model.model_format.name, spec.model.protocol_version) == ("pytorch", "v2")
    assert spec.model.storage_uri.startswith("s3://")
    assert spec.model.resources.requests and spec.model.resources.limits
    assert spec.min_replicas >= 1 and spec.max_replicas >= spec.min_replicas
    assert spec.scale_target and spec.scale_metric


@pytest.mark.parametrize("env", NAMESPACES)
def test_the_predictor_runs_locked_down(rendered, env):
    isvc = one(rendered[env], "InferenceService")
    pod, container = isvc["spec"]["predictor"]["securityContext"], isvc["spec"]["predictor"]["model"]["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0
    assert container["allowPrivilegeEscalation"] is False and container["readOnlyRootFilesystem"] is True
    assert container["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"] for m in isvc["spec"]["predictor"]["model"]["volumeMounts"]}
    assert "/tmp" in mounts  # TorchServe unpacks models and writes logs there
    sdk = check_inference_service(isvc).spec.predictor
    assert sdk.security_context.run_as_non_root and sdk.model.security_context.read_only_root_filesystem


@pytest.mark.parametrize("env", NAMESPACES)
def test_only_serving_ports_are_open_and_management_is_not_one(rendered, env):
    from serving.ts_config import MarModel, TorchServeConfig

    config = TorchServeConfig(models=(MarModel("m", "1.0", "m.mar"),))
    policy = one(rendered[env], "NetworkPolicy", "onevision-predictor")
    ports = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    management, inference = config.management_address, config.inference_address
    assert management.startswith("http://127.0.0.1:") and management.rsplit(":", 1)[1] != inference.rsplit(":", 1)[1]
    assert int(management.rsplit(":", 1)[1]) not in ports and int(inference.rsplit(":", 1)[1]) in ports
    assert policy["spec"]["podSelector"]["matchLabels"] == {"serving.kserve.io/inferenceservice": "onevision"}


def test_dev_runs_one_small_replica_in_standard_mode(rendered):
    spec, isvc = predictor(rendered["dev"]), one(rendered["dev"], "InferenceService")
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    assert (spec["minReplicas"], spec["maxReplicas"]) == (1, 1)
    assert "canaryTrafficPercent" not in spec


def test_production_autoscales_bigger_with_a_knative_canary(rendered):
    prod, dev = predictor(rendered["production"]), predictor(rendered["dev"])
    annotations = one(rendered["production"], "InferenceService")["metadata"]["annotations"]
    # canaryTrafficPercent is ignored in Standard mode, so the example needs Knative mode.
    assert annotations["serving.kserve.io/deploymentMode"] == "Knative"
    # the overlay is the stable state: a committed canaryTrafficPercent would start (or revert) a canary on
    # every apply and block the canary tool ("a canary ... is in progress")
    assert "canaryTrafficPercent" not in prod and "canaryTrafficPercent" not in predictor(rendered["dev"])
    assert prod["maxReplicas"] > prod["minReplicas"] > 1
    assert prod["scaleMetric"] in ("concurrency", "rps")  # Knative's autoscaler metrics
    for kind in ("requests", "limits"):
        assert cpu_millis(prod["model"]["resources"][kind]["cpu"]) > cpu_millis(dev["model"]["resources"][kind]["cpu"])


EVENT_SINK_URL = "http://onevision-events/?arm=control"


@pytest.mark.parametrize("env", NAMESPACES)
def test_the_predictor_logs_every_request_and_response_to_the_event_sink(rendered, env):
    logger = predictor(rendered[env])["logger"]
    assert logger == {"mode": "all", "url": EVENT_SINK_URL}
    service = one(rendered[env], "Service", "onevision-events")
    assert urlsplit(logger["url"]).hostname == service["metadata"]["name"] and service["spec"]["ports"][0]["port"] == 80
    assert check_inference_service(one(rendered[env], "InferenceService")).spec.predictor.logger.mode == "all"


@pytest.mark.parametrize("env", NAMESPACES)
def test_the_event_sink_runs_the_project_image_and_admits_the_predictors(rendered, env):
    deployment, service = one(rendered[env], "Deployment", "onevision-events"), one(rendered[env], "Service", "onevision-events")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"{PROJECT_IMAGE}:0.1.0"
    assert container["command"] + container["args"][:2] == ["onevision", "events", "serve"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    policy = one(rendered[env], "NetworkPolicy", "onevision-events")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    sources = [peer["podSelector"]["matchLabels"] for rule in policy["spec"]["ingress"] for peer in rule["from"]]
    assert {"serving.kserve.io/inferenceservice": "onevision"} in sources
    assert {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]} == {container["ports"][0]["containerPort"]}


BREAKAGES = {
    "unknown field": (lambda p: p.update(minReplica=2), "spec.predictor.minReplica: unknown field"),
    "mistyped int": (lambda p: p.update(maxReplicas="8"), "spec.predictor.maxReplicas: expected int"),
    "mistyped nested": (lambda p: p["model"].update(storageUri=["s3://x"]), "spec.predictor.model.storageUri: expected str"),
    "missing required": (lambda p: p["model"].pop("modelFormat"), "model_format"),
    "object for a list": (lambda p: p.update(tolerations={"key": "gpu"}), "spec.predictor.tolerations: expected a list"),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_sdk_checker_rejects_a_broken_inference_service(rendered, breakage):
    isvc = copy.deepcopy(one(rendered["production"], "InferenceService"))
    mutate, expected = BREAKAGES[breakage]
    mutate(isvc["spec"]["predictor"])
    with pytest.raises(SchemaError) as caught:
        check_inference_service(isvc)
    assert expected in str(caught.value)


def test_sdk_checker_rejects_another_kind(rendered):
    with pytest.raises(SchemaError, match="kind: expected InferenceService"):
        check_inference_service(one(rendered["dev"], "CronJob"))
