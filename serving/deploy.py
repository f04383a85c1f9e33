"""Deploy a model store as a KServe canary: upload the archive layout, then create the InferenceService
(first model) or start a canary on it (every later model), with the canary tool's KServe semantics.

Locally (`apply=False`) nothing talks to a cluster: the layout is uploaded (a file:// or s3:// URI) and
the exact InferenceService manifest and canary patch are written beside it, ready for `kubectl apply`.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from serving.canary.errors import CanaryError
from serving.canary.mode import DeploymentMode, detect_mode
from serving.canary.patches import DeployRequest
from serving.canary.rollout import Target, execute, plan_deploy


@dataclass(frozen=True)
class DeployResult:
    storage_uri: str
    manifest: str  # path of the full InferenceService manifest written
    patch: str  # path of the canary patch written
    action: str  # "written" (local), "created" or "canary"
    canary_percent: int
    summary: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def inference_service(name: str, namespace: str, storage_uri: str, image: str,
                      mode: DeploymentMode = DeploymentMode.KNATIVE) -> dict[str, Any]:
    """The InferenceService of a first deployment (all traffic to `storage_uri`)."""
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": namespace,
                     "annotations": {"serving.kserve.io/deploymentMode": mode.value}},
        "spec": {"predictor": {
            "serviceAccountName": "onevision-serving",
            "minReplicas": 1,
            "model": {
                "modelFormat": {"name": "pytorch"},
                "protocolVersion": "v2",
                "image": image,
                "storageUri": storage_uri,
                "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}},
            },
        }},
    }


def _upload(model_store_dir: Path, storage_uri: str) -> None:
    from onevision.storage import open_store

    model_store_dir = Path(model_store_dir)
    if not (model_store_dir / "config" / "config.properties").exists():
        raise FileNotFoundError(f"not a KServe model store (missing config/config.properties): {model_store_dir}")
    open_store(storage_uri).upload_dir(model_store_dir)


def deploy_canary(
    model_store_dir: Path,
    storage_uri: str,
    *,
    out_dir: Path,
    canary_percent: int,
    name: str = "onevision",
    namespace: str = "onevision",
    apply: bool = True,
    image: str | None = None,
    client: Any = None,
) -> DeployResult:
    from onevision.image import image as project_image

    request = DeployRequest(storage_uri, canary_percent)  # validates percent and URI scheme before any upload
    _upload(model_store_dir, storage_uri)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = Target(name, namespace)
    full = inference_service(name, namespace, storage_uri, image or project_image())
    manifest_path = out_dir / "inferenceservice.yaml"
    manifest_path.write_text(yaml.safe_dump(full, sort_keys=False))
    patch_path = out_dir / "canary-patch.yaml"
    if not apply:
        action = plan_deploy(target, request, DeploymentMode.KNATIVE, None)
        patch_path.write_text(action.render())
        summary = (f"model store uploaded to {storage_uri}; first deployment: kubectl apply -f {manifest_path}; "
                   f"later deployments: {action.summary}")
        return _result(out_dir, storage_uri, manifest_path, patch_path, "written", canary_percent, summary)

    from serving.canary.client import KServeIsvcClient

    client = client or KServeIsvcClient()
    try:
        current = client.get(name, namespace)
    except CanaryError:
        current = None
    if current is None:
        from serving.canary.sdk import to_sdk_model

        client.kserve.create(to_sdk_model(full, validate=True), namespace=namespace)
        patch_path.write_text("# first deployment: the InferenceService was created, no canary patch\n")
        return _result(out_dir, storage_uri, manifest_path, patch_path, "created", 100,
                       f"InferenceService {name} created in {namespace} serving {storage_uri}")
    current = current if isinstance(current, dict) else current.to_dict()
    action = plan_deploy(target, request, detect_mode(current), current)
    patch_path.write_text(action.render())
    execute(action, client)
    return _result(out_dir, storage_uri, manifest_path, patch_path, "canary", canary_percent, action.summary)


def _result(out_dir: Path, uri: str, manifest: Path, patch: Path, action: str, percent: int, summary: str) -> DeployResult:
    result = DeployResult(uri, str(manifest), str(patch), action, percent, summary)
    (out_dir / "deployment.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    return result
