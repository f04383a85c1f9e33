"""The .mar + KServe layout builder, TorchServe's config.properties, bundle resolution for the kserve.Model
predictor and the `serve build` command. Archiving never loads the model, so a stub bundle suffices."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from onevision.bundle import bundle_identity, file_hashes
from serving.archive import ArchiveError, build_archive
from serving.cli import serve_app
from serving.kserve_model import resolve_bundle_dir
from serving.ts_config import MarModel, TorchServeConfig, read_mar_model


@pytest.fixture()
def bundle(tmp_path: Path) -> Path:
    root = tmp_path / "bundle"
    (root / "encoder").mkdir(parents=True)
    (root / "encoder" / "encoder.json").write_text(json.dumps({"image_size": 64, "widths": [8], "embed_dim": 8}))
    (root / "generator").mkdir()
    (root / "generator" / "config.json").write_text("{}")
    (root / "bundle.json").write_text(json.dumps({"kind": "generator", "version": "v3", "created": 1.0,
                                                  "files": file_hashes(root)}))
    return root


def report_for(path: Path, bundle: Path, passed: bool = True) -> Path:
    """A parity report that judged `bundle` (its identity, as `onevision evaluate model` records it)."""
    reasons = [] if passed else ["ndcg@10 0.41 < 0.98 x cascade 0.45"]
    path.write_text(json.dumps({"passed": passed, "reasons": reasons,
                                "bundles": {"generator": bundle_identity(bundle), "cascade": None}}))
    return path


@pytest.fixture()
def parity(tmp_path: Path, bundle: Path) -> Path:
    return report_for(tmp_path / "parity_in.json", bundle)


def properties(path: Path) -> dict[str, str]:
    """Parsed the way KServe's TorchServe wrapper parses it (split each line at the first '=')."""
    lines = [line for line in path.read_text().splitlines() if "=" in line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_layout_has_config_and_model_store(bundle, tmp_path):
    result = build_archive(bundle, tmp_path / "out", model_name="onevision", version="2.0")
    assert result.mar_path == tmp_path / "out" / "model-store" / "onevision.mar"
    assert result.config_path == tmp_path / "out" / "config" / "config.properties"


def test_config_has_what_kserve_and_torchserve_need(bundle, tmp_path):
    props = properties(build_archive(bundle, tmp_path / "out", model_name="onevision", version="2.0").config_path)
    snapshot = json.loads(props["model_snapshot"])
    assert snapshot["models"]["onevision"]["2.0"]["marName"] == "onevision.mar"
    assert props["model_store"] == "/mnt/models/model-store"
    assert props["enable_envvars_config"] == "true"  # lets KServe's TS_SERVICE_ENVELOPE apply
    assert props["disable_token_authorization"] == "true"
    assert props["install_py_dep_per_model"] == "false"
    assert props["service_envelope"] == "kservev2"
    for key in ("inference_address", "management_address", "metrics_address", "load_models"):
        assert props[key]


def test_archive_carries_handler_bundle_and_manifest(bundle, tmp_path):
    result = build_archive(bundle, tmp_path / "out", model_name="onevision")
    with zipfile.ZipFile(result.mar_path) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read("manifest.json"))
        mar_manifest = json.loads(zf.read("MAR-INF/MANIFEST.json"))
    assert {"torchserve_handler.py", "bundle/bundle.json", "bundle/encoder/encoder.json"} <= names
    assert mar_manifest["model"]["handler"] == "torchserve_handler.py"
    assert manifest["bundle"]["kind"] == "generator" and manifest["bundle"]["version"] == "v3"
    assert set(manifest["versions"]) >= {"onevision", "torch", "torchserve"} and manifest["created"]


def test_parity_report_is_copied_beside_the_layout(bundle, parity, tmp_path):
    result = build_archive(bundle, tmp_path / "out", parity_path=parity)
    assert result.parity_path == tmp_path / "out" / "parity.json"
    assert json.loads(result.parity_path.read_text())["passed"] is True
    assert result.manifest["parity"] == {"passed": True, "override": False}
    assert result.manifest["bundle"]["digest"] == bundle_identity(bundle)["digest"]


def test_a_report_on_another_bundle_is_refused(bundle, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "bundle.json").write_text(json.dumps({"kind": "generator", "version": "v2", "created": 0.5}))
    with pytest.raises(ArchiveError, match="judged generator v2"):
        build_archive(bundle, tmp_path / "out", parity_path=report_for(tmp_path / "p.json", other))


def test_a_changed_weight_file_is_refused(bundle, parity, tmp_path):
    (bundle / "generator" / "config.json").write_text('{"changed": true}')
    with pytest.raises(ArchiveError, match=r"changed \['generator/config.json'\]"):
        build_archive(bundle, tmp_path / "out", parity_path=parity)


def test_a_deleted_weight_file_fails_the_build_not_torchserve(bundle, tmp_path):
    (bundle / "generator" / "config.json").unlink()
    with pytest.raises(ArchiveError, match=r"missing \['generator/config.json'\]"):
        build_archive(bundle, tmp_path / "out")


def test_a_bundle_without_a_file_manifest_is_refused(bundle, tmp_path):
    meta = json.loads((bundle / "bundle.json").read_text())
    del meta["files"]
    (bundle / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(ArchiveError, match="lists no files"):
        build_archive(bundle, tmp_path / "out")


def test_the_kserve_predictor_refuses_a_truncated_archive_naming_it(bundle, tmp_path):
    result = build_archive(bundle, tmp_path / "out", model_name="onevision")
    data = result.mar_path.read_bytes()
    result.mar_path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="onevision.mar is not a readable model archive"):
        resolve_bundle_dir(tmp_path / "out", "onevision")


def test_the_kserve_predictor_unpacks_into_a_new_private_directory(bundle, tmp_path):
    import os
    import stat

    build_archive(bundle, tmp_path / "out", model_name="onevision")
    first, second = (resolve_bundle_dir(tmp_path / "out", "onevision") for _ in range(2))
    assert first != second
    assert stat.S_IMODE(os.stat(first.parent).st_mode) == 0o700


def test_a_bare_passed_true_is_refused(bundle, tmp_path):
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps({"passed": True}))
    with pytest.raises(ArchiveError, match="names no generator bundle"):
        build_archive(bundle, tmp_path / "out", parity_path=bare)


def test_a_failed_report_is_refused_unless_overridden_and_recorded(bundle, tmp_path):
    failed = report_for(tmp_path / "failed.json", bundle, passed=False)
    with pytest.raises(ArchiveError, match="FAILED: ndcg@10.*--allow-failed-parity"):
        build_archive(bundle, tmp_path / "out", parity_path=failed)
    assert not (tmp_path / "out" / "model-store").exists()
    result = build_archive(bundle, tmp_path / "out", parity_path=failed, allow_failed_parity=True)
    assert result.manifest["parity"] == {"passed": False, "override": True}


def test_cli_build_exits_1_on_a_failed_report(bundle, tmp_path):
    failed = report_for(tmp_path / "failed.json", bundle, passed=False)
    result = CliRunner().invoke(serve_app, ["build", "--bundle", str(bundle), "--out", str(tmp_path / "out"),
                                            "--parity", str(failed)])
    assert result.exit_code == 1 and "FAILED" in result.output


def test_rebuild_without_parity_removes_the_earlier_report(bundle, parity, tmp_path):
    build_archive(bundle, tmp_path / "out", parity_path=parity)
    build_archive(bundle, tmp_path / "out")
    assert not (tmp_path / "out" / "parity.json").exists()


def test_parity_report_without_a_verdict_is_refused(bundle, tmp_path):
    report = tmp_path / "p.json"
    report.write_text(json.dumps({"ok": True}))
    with pytest.raises(ArchiveError, match="passed"):
        build_archive(bundle, tmp_path / "out", parity_path=report)


def test_directory_without_bundle_json_is_refused(tmp_path):
    (tmp_path / "notabundle").mkdir()
    with pytest.raises(ArchiveError, match="bundle.json"):
        build_archive(tmp_path / "notabundle", tmp_path / "out")


def test_layout_is_uploaded_to_the_given_store(bundle, parity, tmp_path):
    result = build_archive(bundle, tmp_path / "out", parity_path=parity, upload_to=str(tmp_path / "remote"))
    uploaded = {p.relative_to(tmp_path / "remote").as_posix() for p in (tmp_path / "remote").rglob("*") if p.is_file()}
    assert uploaded == {"config/config.properties", "config/metrics.yaml", "model-store/onevision.mar", "manifest.json",
                        "parity.json",
                        "_PUBLISHED.json"}  # the publication marker, written last
    assert result.uploaded_to == str(tmp_path / "remote")


def test_mar_name_and_version_are_read_back(bundle, tmp_path):
    result = build_archive(bundle, tmp_path / "out", model_name="gen-v4", version="4.1")
    assert read_mar_model(result.mar_path) == MarModel("gen-v4", "4.1", "gen-v4.mar")


def test_kserve_predictor_finds_the_bundle_inside_the_layout(bundle, tmp_path):
    build_archive(bundle, tmp_path / "out", model_name="onevision")
    found = resolve_bundle_dir(tmp_path / "out", "onevision")
    assert json.loads((found / "bundle.json").read_text())["version"] == "v3"


def test_kserve_predictor_takes_a_bundle_directory_as_is(bundle):
    assert resolve_bundle_dir(bundle) == bundle


def test_config_without_envelope_leaves_it_to_the_environment():
    config = TorchServeConfig(models=(MarModel("m", "1.0", "m.mar"),), envelope=None)
    assert "service_envelope" not in config.render()


def test_config_refuses_two_models_with_one_name():
    with pytest.raises(ValueError, match="distinct"):
        TorchServeConfig(models=(MarModel("m", "1.0", "a.mar"), MarModel("m", "2.0", "b.mar")))


def test_cli_build_writes_the_layout(bundle, parity, tmp_path):
    result = CliRunner().invoke(serve_app, ["build", "--bundle", str(bundle), "--out", str(tmp_path / "out"),
                                            "--parity", str(parity), "--model-name", "gen"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "model-store" / "gen.mar").exists()
    assert "generator bundle packaged" in result.output


def test_cli_build_names_a_bad_bundle(tmp_path):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(serve_app, ["build", "--bundle", str(tmp_path / "empty"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "bundle.json" in result.output
