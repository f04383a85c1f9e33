from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from component_artifacts import artifact
from kfp import dsl

from components.deploy import deploy_canary


def test_a_local_deploy_uploads_the_version_and_writes_the_manifests(model_store: dsl.Model, tmp_path: Path) -> None:
    deployment = artifact(dsl.Artifact, tmp_path / "deployment")
    deploy_canary.python_func(model_store, deployment, storage_uri=(tmp_path / "models").as_uri(), canary_percent=25,
                              target="local")
    version_dir = tmp_path / "models" / model_store.metadata["bundle_version"]
    version_uri = version_dir.as_uri()
    assert (version_dir / "model-store" / "onevision.mar").is_file()
    assert deployment.metadata["target"] == "local" and deployment.metadata["storage_uri"] == version_uri
    isvc = yaml.safe_load((tmp_path / "deployment" / "inferenceservice.yaml").read_text())
    assert isvc["metadata"]["name"] == "onevision" and isvc["spec"]["predictor"]["model"]["storageUri"] == version_uri
    written = json.loads((tmp_path / "deployment" / "deployment.json").read_text())
    assert (written["action"], written["canary_percent"]) == ("written", 25)
    assert (tmp_path / "deployment" / "canary-patch.yaml").read_text().strip()


def test_an_unknown_deploy_target_is_refused_before_any_upload(model_store: dsl.Model, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="deploy target must be 'cluster' or 'local', got 'staging'"):
        deploy_canary.python_func(model_store, artifact(dsl.Artifact, tmp_path / "deployment"),
                                  storage_uri=(tmp_path / "models").as_uri(), target="staging")
    assert not (tmp_path / "models").exists()
