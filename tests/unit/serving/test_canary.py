"""Canary rollout: patches follow KServe 0.21's semantics per deployment mode, the client makes the
right SDK calls (patch vs replace), promotion is gated on parity, the CLI's --dry-run prints the body."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import serving.canary.cli as canary_cli
from serving.canary import (
    CanaryError,
    DeployRequest,
    DeploymentMode,
    ParityGateError,
    Target,
    TrafficSplitUnavailableError,
    canary_name_for,
    deploy_patch,
    detect_mode,
    execute,
    plan_deploy,
    plan_promote,
    plan_rollback,
    promote_object,
    read_status,
    require_passing_parity,
    resolve_mode,
    rollback_patch,
)
from serving.canary.client import KServeIsvcClient
from serving.canary.cli import canary_app

KNATIVE, STANDARD = DeploymentMode.KNATIVE, DeploymentMode.STANDARD
STABLE_URI = "s3://onevision-models/generator/v3"
CANARY_URI = "s3://onevision-models/generator/v4"
TARGET = Target("onevision", "onevision")
MODEL = {"modelFormat": {"name": "pytorch"}, "protocolVersion": "v2", "storageUri": STABLE_URI,
         "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}}}


def isvc(mode: DeploymentMode, **predictor: Any) -> dict[str, Any]:
    """A live InferenceService as `kubectl get -o yaml` shows it, rolled out on STABLE_URI."""
    components = {"predictor": {"latestReadyRevision": "onevision-predictor-00001",
                                "latestRolledoutRevision": "onevision-predictor-00001"}} if mode is KNATIVE else {}
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "onevision", "namespace": "onevision", "generation": 3, "resourceVersion": "812",
                     "annotations": {"serving.kserve.io/deploymentMode": mode.value},
                     "managedFields": [{"manager": "kubectl-client-side-apply"}]},
        "spec": {"predictor": {"minReplicas": 2, "maxReplicas": 4, "serviceAccountName": "onevision-serving",
                               "model": copy.deepcopy(MODEL), **predictor}},
        "status": {"deploymentMode": mode.value, "observedGeneration": 3,
                   "conditions": [{"type": "Ready", "status": "True"}], "components": components},
    }


def knative_canary(storage_uri: str = CANARY_URI) -> dict[str, Any]:
    live = isvc(KNATIVE, canaryTrafficPercent=10)
    live["spec"]["predictor"]["model"]["storageUri"] = storage_uri
    return live


def standard_canary(percent: int = 10) -> dict[str, Any]:
    live = isvc(STANDARD)
    live["spec"]["canary"] = [{"trafficPercent": percent, "predictor": {
        "name": "v4-canary", "model": {**copy.deepcopy(MODEL), "storageUri": CANARY_URI}}}]
    live["status"]["canaryStatuses"] = [{"name": "v4-canary", "ready": True, "trafficPercent": percent}]
    return live


MODEL_DIGEST = "sha256:" + "4" * 64


def parity_report(root: Path, passed: bool, key: str = "parity.json", judged: str = MODEL_DIGEST) -> str:
    """A published model at `root`: the archive manifest (bundle digest MODEL_DIGEST) and a parity report that
    judged the generator bundle with digest `judged`; returns the storage URI."""
    (root / key).parent.mkdir(parents=True, exist_ok=True)
    reasons = [] if passed else ["recall@10 0.41 < 0.99 x cascade 0.45"]
    bundles = {"generator": {"kind": "generator", "version": "v4", "digest": judged}, "cascade": None}
    (root / key).write_text(json.dumps({"passed": passed, "epsilon": 0.01, "reasons": reasons, "bundles": bundles}))
    (root / "manifest.json").write_text(json.dumps({"bundle": {"kind": "generator", "version": "v4",
                                                               "digest": MODEL_DIGEST}}))
    return str(root)


# --- Knative mode --------------------------------------------------------------------------------------

def test_knative_deploy_patch_sets_new_storage_uri_and_canary_percent():
    patch = deploy_patch(KNATIVE, DeployRequest(CANARY_URI, 10), name="onevision", namespace="onevision",
                         current=isvc(KNATIVE))
    assert patch["spec"] == {"predictor": {"canaryTrafficPercent": 10, "model": {"storageUri": CANARY_URI}}}
    assert "annotations" not in patch["metadata"]


def test_knative_deploy_with_tag_routing_adds_kserve_annotation():
    patch = deploy_patch(KNATIVE, DeployRequest(CANARY_URI, 0, tag_routing=True), name="onevision", namespace="onevision")
    assert patch["metadata"]["annotations"] == {"serving.kserve.io/enable-tag-routing": "true"}


def test_knative_deploy_refuses_without_a_rolled_out_revision():
    fresh = isvc(KNATIVE)
    fresh["status"]["components"] = {}
    with pytest.raises(TrafficSplitUnavailableError, match="100% to the new revision"):
        deploy_patch(KNATIVE, DeployRequest(CANARY_URI, 10), name="onevision", namespace="onevision", current=fresh)


def test_knative_deploy_refuses_a_second_model_while_a_canary_runs():
    with pytest.raises(CanaryError, match="in progress at 10%"):
        deploy_patch(KNATIVE, DeployRequest("s3://onevision-models/generator/v5", 10), name="onevision",
                     namespace="onevision", current=knative_canary())


def test_knative_promote_object_drops_canary_percent_and_keeps_the_rest():
    live = knative_canary()
    body = promote_object(KNATIVE, live)
    assert "canaryTrafficPercent" not in body["spec"]["predictor"]
    assert body["spec"]["predictor"]["model"] == live["spec"]["predictor"]["model"]
    assert body["metadata"]["resourceVersion"] == "812"  # a concurrent change makes the replace fail
    assert "status" not in body and "managedFields" not in body["metadata"]


def test_knative_promote_refuses_when_no_canary_runs():
    with pytest.raises(CanaryError, match="nothing to promote"):
        promote_object(KNATIVE, isvc(KNATIVE))


def test_knative_rollback_sets_canary_percent_to_zero():
    assert rollback_patch(KNATIVE, name="onevision", namespace="onevision")["spec"] == {
        "predictor": {"canaryTrafficPercent": 0}}


# --- Standard (RawDeployment) mode ---------------------------------------------------------------------

def test_standard_deploy_patch_adds_a_named_canary_with_the_stable_model_spec():
    patch = deploy_patch(STANDARD, DeployRequest(CANARY_URI, 10, canary_name="v4-canary"), name="onevision",
                         namespace="onevision", current=isvc(STANDARD))
    assert patch["spec"] == {"canary": [{"trafficPercent": 10, "predictor": {
        "name": "v4-canary", "model": {"name": "kserve-container", **MODEL, "storageUri": CANARY_URI}}}]}


def test_standard_dark_canary_gets_one_replica():
    patch = deploy_patch(STANDARD, DeployRequest(CANARY_URI, 0), name="onevision", namespace="onevision",
                         current=isvc(STANDARD))
    assert patch["spec"]["canary"][0]["predictor"]["minReplicas"] == 1


def test_standard_deploy_refuses_a_split_without_the_gateway_httproute():
    with pytest.raises(TrafficSplitUnavailableError) as caught:
        plan_deploy(TARGET, DeployRequest(CANARY_URI, 10), STANDARD, isvc(STANDARD), route_exists=False)
    message = str(caught.value)
    assert "Standard (RawDeployment) mode, where canaryTrafficPercent is ignored" in message
    assert "HTTPRoute onevision-predictor" in message and "--percent 0" in message


def test_standard_deploy_with_the_httproute_is_a_merge_patch():
    action = plan_deploy(TARGET, DeployRequest(CANARY_URI, 10), STANDARD, isvc(STANDARD), route_exists=True)
    assert action.verb == "patch" and action.body["spec"]["canary"][0]["trafficPercent"] == 10


def test_standard_deploy_refuses_tag_routing():
    with pytest.raises(CanaryError, match="Knative feature"):
        deploy_patch(STANDARD, DeployRequest(CANARY_URI, 0, tag_routing=True), name="onevision",
                     namespace="onevision", current=isvc(STANDARD))


def test_standard_promote_makes_the_canary_the_stable_predictor():
    body = promote_object(STANDARD, standard_canary())
    assert body["spec"]["predictor"]["name"] == "v4-canary"
    assert body["spec"]["predictor"]["model"]["storageUri"] == CANARY_URI
    assert body["spec"]["predictor"]["maxReplicas"] == 4  # stable autoscaling kept
    assert "canary" not in body["spec"]


def test_standard_rollback_empties_the_canary_list():
    assert rollback_patch(STANDARD, name="onevision", namespace="onevision")["spec"] == {"canary": []}


def test_rollback_refuses_when_no_canary_runs():
    with pytest.raises(CanaryError, match="nothing to roll back"):
        plan_rollback(TARGET, STANDARD, isvc(STANDARD))


def test_canary_name_is_a_valid_deterministic_predictor_name():
    name = canary_name_for("s3://onevision-models/generator/3.1_final/")
    assert name == canary_name_for("s3://onevision-models/generator/3.1_final/")
    assert name.startswith("m3-1-final-") and len(name) <= 24
    DeployRequest(CANARY_URI, 10, canary_name=name)  # accepted by KServe's predictor.name pattern


# --- deployment mode -----------------------------------------------------------------------------------

def test_legacy_raw_deployment_annotation_means_standard_mode():
    live = isvc(STANDARD)
    del live["status"]
    live["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = "RawDeployment"
    assert detect_mode(live) is STANDARD


def test_status_deployment_mode_wins_over_the_annotation():
    live = isvc(KNATIVE)
    live["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = "Standard"
    assert detect_mode(live) is KNATIVE


def test_mode_flag_contradicting_the_live_object_is_refused():
    with pytest.raises(CanaryError, match="runs in Standard mode"):
        resolve_mode(KNATIVE, isvc(STANDARD))


# --- status --------------------------------------------------------------------------------------------

def test_knative_status_reports_the_split_from_the_revision_traffic():
    live = knative_canary()
    live["status"]["components"]["predictor"]["traffic"] = [
        {"revisionName": "onevision-predictor-00002", "percent": 10, "latestRevision": True, "tag": "latest"},
        {"revisionName": "onevision-predictor-00001", "percent": 90, "latestRevision": False, "tag": "prev"}]
    state = read_status(live, KNATIVE)
    assert [(t.target, t.percent, t.tag) for t in state.traffic] == [
        ("onevision-predictor-00002", 10, "latest"), ("onevision-predictor-00001", 90, "prev")]
    assert state.revisions["latestRolledoutRevision"] == "onevision-predictor-00001"


def test_standard_status_reports_the_httproute_weights():
    route = {"spec": {"rules": [{"backendRefs": [{"name": "onevision-predictor", "weight": 80},
                                                 {"name": "onevision-v4-canary-predictor", "weight": 20}]}]}}
    state = read_status(standard_canary(20), STANDARD, route)
    assert [(t.target, t.percent) for t in state.traffic] == [
        ("onevision-predictor", 80), ("onevision-v4-canary-predictor", 20)]


def test_standard_status_without_httproute_reports_no_canary_traffic():
    state = read_status(standard_canary(20), STANDARD, route=None)
    assert [(t.target, t.percent) for t in state.traffic] == [("onevision-predictor", 100)]
    assert any("canaries get no ingress traffic" in note for note in state.notes)


# --- parity gate ---------------------------------------------------------------------------------------

def test_promotion_refuses_without_a_parity_report(tmp_path):
    with pytest.raises(ParityGateError, match="no parity report found"):
        plan_promote(TARGET, KNATIVE, knative_canary(), parity=str(tmp_path / "parity" / "parity.json"))


def test_promotion_refuses_a_failing_parity_report(tmp_path):
    with pytest.raises(ParityGateError, match=r"passed=false: recall@10 0\.41"):
        require_passing_parity(CANARY_URI, str(Path(parity_report(tmp_path, False)) / "parity.json"))


@pytest.mark.parametrize("key", ["parity.json", "parity/parity.json"])
def test_parity_report_is_found_under_the_model_storage_uri(tmp_path, key):
    verdict = require_passing_parity(parity_report(tmp_path, True, key))
    assert verdict.passed and verdict.location.endswith(key)


def test_promotion_with_a_passing_report_is_a_replace(tmp_path):
    storage = parity_report(tmp_path, True)
    action, verdict = plan_promote(TARGET, KNATIVE, knative_canary(storage), parity=f"{storage}/parity.json")
    assert action.verb == "replace" and verdict.passed


def test_promotion_refuses_a_report_that_judged_another_model(tmp_path):
    storage = parity_report(tmp_path, True, judged="sha256:" + "9" * 64)
    with pytest.raises(ParityGateError, match="not bundle v4"):
        plan_promote(TARGET, KNATIVE, knative_canary(storage))


def test_promotion_refuses_a_bare_passed_true(tmp_path):
    storage = parity_report(tmp_path, True)
    (tmp_path / "parity.json").write_text(json.dumps({"passed": True}))
    with pytest.raises(ParityGateError, match="names no generator bundle"):
        plan_promote(TARGET, KNATIVE, knative_canary(storage))


def test_promotion_refuses_a_model_without_an_archive_manifest(tmp_path):
    storage = parity_report(tmp_path, True)
    (tmp_path / "manifest.json").unlink()
    with pytest.raises(ParityGateError, match="no manifest.json there"):
        plan_promote(TARGET, KNATIVE, knative_canary(storage))


# --- SDK calls through a recording fake KServeClient ---------------------------------------------------

class RecordingKServe:
    """Stands in for kserve.KServeClient and records each call with the SDK object it got."""

    def __init__(self, live: dict[str, Any]):
        self.live, self.calls = live, []
        self.api_instance = self

    def get(self, name, namespace=None):
        self.calls.append(("get", name, namespace))
        return self.live

    def patch(self, name, inferenceservice, namespace=None):
        self.calls.append(("patch", name, namespace, inferenceservice))
        return {"metadata": {"generation": 4}}

    def replace(self, name, inferenceservice, namespace=None):
        self.calls.append(("replace", name, namespace, inferenceservice))
        return {"metadata": {"generation": 4}}

    def wait_isvc_ready(self, name, namespace=None, timeout_seconds=600, polling_interval=10, expected_generation=None):
        self.calls.append(("wait_isvc_ready", name, namespace, expected_generation))

    def get_namespaced_custom_object(self, group, version, namespace, plural, name):
        from kubernetes.client.rest import ApiException

        self.calls.append(("get_namespaced_custom_object", plural, name))
        raise ApiException(status=404, reason="Not Found")


def sent(fake: RecordingKServe) -> tuple[str, dict[str, Any]]:
    from kubernetes.client import ApiClient

    verb, _, _, obj = fake.calls[-1]
    assert type(obj).__name__ == "V1beta1InferenceService"
    return verb, ApiClient().sanitize_for_serialization(obj)


def test_client_is_created_only_on_first_use():
    def no_cluster():
        raise AssertionError("KServeClient must not be created")

    KServeIsvcClient(kserve_factory=no_cluster)  # constructing costs nothing


def test_deploy_goes_through_kserve_patch_with_the_planned_body():
    fake = RecordingKServe(isvc(KNATIVE))
    action = plan_deploy(TARGET, DeployRequest(CANARY_URI, 10), KNATIVE, fake.live)
    execute(action, KServeIsvcClient(lambda: fake))
    assert sent(fake) == ("patch", action.body)


def test_promote_goes_through_kserve_replace_without_canary_percent(tmp_path):
    fake = RecordingKServe(knative_canary(parity_report(tmp_path, True)))
    action, _ = plan_promote(TARGET, KNATIVE, fake.live)
    execute(action, KServeIsvcClient(lambda: fake))
    verb, body = sent(fake)
    assert verb == "replace" and "canaryTrafficPercent" not in body["spec"]["predictor"]


def test_rollback_goes_through_kserve_patch_with_zero_percent():
    fake = RecordingKServe(knative_canary())
    execute(plan_rollback(TARGET, KNATIVE, fake.live), KServeIsvcClient(lambda: fake))
    verb, body = sent(fake)
    assert verb == "patch" and body["spec"]["predictor"]["canaryTrafficPercent"] == 0


def test_wait_passes_the_generation_to_wait_isvc_ready():
    fake = RecordingKServe(isvc(KNATIVE))
    KServeIsvcClient(lambda: fake).wait_ready("onevision", "onevision", timeout_s=5, poll_s=1, expected_generation=3)
    assert fake.calls == [("wait_isvc_ready", "onevision", "onevision", 3)]


def test_missing_httproute_reads_as_none():
    assert KServeIsvcClient(lambda: RecordingKServe({})).get_httproute("onevision-predictor", "onevision") is None


def published_model(tmp_path: Path) -> str:
    """A model layout uploaded with `upload_dir` (so its publication marker is there), as a storage URI."""
    from onevision.storage import LocalStore

    src = tmp_path / "layout"
    (src / "config").mkdir(parents=True)
    (src / "config" / "config.properties").write_text("model_store=/mnt/models/model-store\n")
    LocalStore(tmp_path / "models" / "v4").upload_dir(src)
    return f"file://{tmp_path / 'models' / 'v4'}"


def test_cli_deploy_in_standard_mode_refuses_when_the_cluster_has_no_httproute(monkeypatch, tmp_path):
    fake = RecordingKServe(isvc(STANDARD))
    monkeypatch.setattr(canary_cli, "make_client", lambda: KServeIsvcClient(lambda: fake))
    result = CliRunner().invoke(canary_app, ["deploy", "--storage-uri", published_model(tmp_path), "--percent", "10"])
    assert result.exit_code == 1 and "canaryTrafficPercent is ignored" in result.output
    assert not [call for call in fake.calls if call[0] in ("patch", "replace")]


def test_cli_deploy_refuses_a_model_whose_upload_did_not_finish(monkeypatch, tmp_path):
    fake = RecordingKServe(isvc(KNATIVE))
    monkeypatch.setattr(canary_cli, "make_client", lambda: KServeIsvcClient(lambda: fake))
    storage = published_model(tmp_path)
    (Path(storage.removeprefix("file://")) / "_PUBLISHED.json").unlink()  # what a crash midway through upload_dir leaves
    result = CliRunner().invoke(canary_app, ["deploy", "--storage-uri", storage, "--percent", "10"])
    assert result.exit_code == 1 and "is not published" in result.output
    assert not [call for call in fake.calls if call[0] in ("patch", "replace")]


def test_cli_deploy_of_a_published_model_patches(monkeypatch, tmp_path):
    fake = RecordingKServe(isvc(KNATIVE))
    monkeypatch.setattr(canary_cli, "make_client", lambda: KServeIsvcClient(lambda: fake))
    result = CliRunner().invoke(canary_app, ["deploy", "--storage-uri", published_model(tmp_path), "--percent", "10"])
    assert result.exit_code == 0, result.output
    assert [call[0] for call in fake.calls if call[0] in ("patch", "replace")] == ["patch"]


def test_cli_wait_waits_for_the_current_generation(monkeypatch):
    fake = RecordingKServe(isvc(KNATIVE))
    monkeypatch.setattr(canary_cli, "make_client", lambda: KServeIsvcClient(lambda: fake))
    result = CliRunner().invoke(canary_app, ["wait", "--timeout", "5", "--poll", "1"])
    assert result.exit_code == 0, result.output
    assert fake.calls[-1] == ("wait_isvc_ready", "onevision", "onevision", 3)


# --- CLI -----------------------------------------------------------------------------------------------

@pytest.fixture
def offline(monkeypatch):
    """Any attempt to reach a cluster fails the test."""
    def no_cluster():
        raise AssertionError("a dry run with --current must not create a KServeClient")

    monkeypatch.setattr(canary_cli, "make_client", lambda: KServeIsvcClient(no_cluster))


def saved(tmp_path: Path, live: dict[str, Any]) -> str:
    path = tmp_path / "isvc.yaml"
    path.write_text(yaml.safe_dump(live))
    return str(path)


def body_of(output: str) -> dict[str, Any]:
    return yaml.safe_load(output)  # the header lines are YAML comments


def run(*args: str):
    return CliRunner().invoke(canary_app, list(args))


@pytest.mark.parametrize("command", ["deploy", "status", "promote", "rollback", "wait"])
def test_every_command_has_help(command):
    result = run(command, "--help")
    assert result.exit_code == 0 and "Usage" in result.output


def test_cli_serverless_deploy_dry_run_needs_no_cluster(offline):
    result = run("deploy", "--storage-uri", CANARY_URI, "--percent", "10", "--mode", "serverless", "--dry-run")
    assert result.exit_code == 0, result.output
    assert body_of(result.output) == deploy_patch(KNATIVE, DeployRequest(CANARY_URI, 10), name="onevision",
                                                  namespace="onevision")


def test_cli_raw_deploy_dry_run_prints_the_canary_patch(offline, tmp_path):
    result = run("deploy", "--storage-uri", CANARY_URI, "--percent", "10", "--canary-name", "v4-canary",
                 "--dry-run", "--current", saved(tmp_path, isvc(STANDARD)))
    assert result.exit_code == 0, result.output
    assert body_of(result.output)["spec"]["canary"][0]["predictor"]["name"] == "v4-canary"
    assert "not checked offline" in result.output


def test_cli_promote_dry_run_prints_the_replacing_object(offline, tmp_path):
    storage = parity_report(tmp_path / "model", True)
    result = run("promote", "--parity", f"{storage}/parity.json", "--dry-run",
                 "--current", saved(tmp_path, knative_canary(storage)))
    assert result.exit_code == 0, result.output
    assert "KServeClient.replace" in result.output
    assert body_of(result.output) == promote_object(KNATIVE, knative_canary(storage))


def test_cli_promote_refuses_without_parity(offline, tmp_path):
    result = run("promote", "--parity", str(tmp_path / "missing.json"), "--dry-run",
                 "--current", saved(tmp_path, knative_canary()))
    assert result.exit_code == 1 and "no parity report found" in result.output


def test_cli_rollback_dry_run_prints_the_patch(offline, tmp_path):
    result = run("rollback", "--dry-run", "--current", saved(tmp_path, standard_canary()))
    assert result.exit_code == 0, result.output
    assert body_of(result.output)["spec"] == {"canary": []}


def test_cli_status_reads_a_saved_object(offline, tmp_path):
    result = run("status", "--current", saved(tmp_path, standard_canary()))
    assert result.exit_code == 0, result.output
    assert "canary v4-canary" in result.output and "not looked up (offline)" in result.output


def test_cli_refuses_a_saved_object_without_dry_run(offline, tmp_path):
    result = run("rollback", "--current", saved(tmp_path, standard_canary()))
    assert result.exit_code == 1 and "only allowed with --dry-run" in result.output


def test_a_knative_canary_revision_logs_as_the_canary_and_logs_as_the_control_once_promoted(tmp_path):
    logger = {"mode": "all", "url": "http://onevision-events/?arm=control"}
    live = isvc(KNATIVE, logger=logger)
    patch = deploy_patch(KNATIVE, DeployRequest(CANARY_URI, 10), name="onevision", namespace="onevision", current=live)
    assert patch["spec"]["predictor"]["logger"] == {"mode": "all", "url": "http://onevision-events/?arm=canary"}
    running = knative_canary(parity_report(tmp_path, True))
    running["spec"]["predictor"]["logger"] = patch["spec"]["predictor"]["logger"]
    promoted = promote_object(KNATIVE, running)
    assert promoted["spec"]["predictor"]["logger"]["url"] == "http://onevision-events/?arm=control"
