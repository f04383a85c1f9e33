"""Package a model bundle as a TorchServe archive in KServe's PyTorch-runtime layout.

    out_dir/
      config/config.properties      TorchServe config (see serving/ts_config.py)
      model-store/<model_name>.mar  handler + bundle/ + manifest.json
      manifest.json                 the same manifest, readable without unzipping
      parity.json                   the parity report this model passed (the canary promote gate reads it)

The layout is what an InferenceService's ``storageUri`` points at (modelFormat pytorch); a cascade bundle
is packaged the same way (its bundle.json says its kind), so an A/B can compare cascade and generator or
two generator versions.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from onevision.evaluation.parity import PARITY_JSON
from serving.ts_config import ENVELOPES, MarModel, TorchServeConfig

HANDLER_FILE = Path(__file__).with_name("torchserve_handler.py")
MANIFEST_FILE = "manifest.json"
PARITY_FILE = PARITY_JSON  # the verdict travels with the model under its own file name
CONFIG_KEY = "config/config.properties"
MODEL_STORE_DIR = "model-store"


class ArchiveError(RuntimeError):
    """The archive could not be built (bad bundle, bad parity report, archiver failure)."""


@dataclass(frozen=True)
class ArchiveResult:
    out_dir: Path
    mar_path: Path
    config_path: Path
    manifest_path: Path
    parity_path: Path | None
    manifest: dict[str, Any]
    uploaded_to: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _read_parity(parity_path: Path, bundle: dict[str, str], allow_failed: bool) -> dict[str, Any]:
    from onevision.evaluation.parity import ParityBindingError, ParityFormatError, parse_verdict, require_verdict_for

    try:
        report = parse_verdict(parity_path.read_text(), f"parity report {parity_path}")
    except FileNotFoundError as exc:
        raise ArchiveError(f"parity report not found: {parity_path}") from exc
    except ParityFormatError as exc:
        raise ArchiveError(str(exc)) from exc
    try:
        require_verdict_for(report, bundle, f"parity report {parity_path}", allow_failed=allow_failed)
    except ParityBindingError as exc:
        hint = "" if report["passed"] or allow_failed else " (--allow-failed-parity ships it anyway, recorded in the manifest)"
        raise ArchiveError(f"{exc}{hint}") from None
    return report


def _bundle_identity(bundle_dir: Path) -> dict[str, str]:
    """The bundle's identity, once every file of its manifest is verified (a deleted weight file fails here,
    not in TorchServe after its load timeout)."""
    from onevision.bundle import BundleIntegrityError, bundle_identity, verify_bundle

    try:
        verify_bundle(bundle_dir)
        return bundle_identity(bundle_dir)
    except BundleIntegrityError as exc:
        raise ArchiveError(str(exc)) from exc
    except (FileNotFoundError, ValueError, json.JSONDecodeError) as exc:
        raise ArchiveError(f"not a model bundle: {exc}") from exc


def build_manifest(bundle_dir: Path, model_name: str, version: str, envelope: str,
                   parity: dict[str, Any] | None, bundle: dict[str, str] | None = None,
                   parity_override: bool = False) -> dict[str, Any]:
    from onevision.bundle import read_bundle_meta

    bundle = bundle or _bundle_identity(bundle_dir)
    return {
        "model_name": model_name,
        "model_version": version,
        "bundle": {**bundle, "created": read_bundle_meta(bundle_dir).created},
        "envelope": envelope,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": {
            "onevision": _version("onevision"), "torch": _version("torch"), "torchserve": _version("torchserve"),
            "torch_model_archiver": _version("torch-model-archiver"), "kserve": _version("kserve"),
            "python": platform.python_version(),
        },
        "parity": None if parity is None else {"passed": parity["passed"], "override": parity_override},
    }


def _archiver() -> str:
    local = Path(sys.executable).with_name("torch-model-archiver")
    if local.exists():
        return str(local)
    found = shutil.which("torch-model-archiver")
    if found is None:
        raise ArchiveError("torch-model-archiver not found next to the Python interpreter or on PATH; "
                           "install torch-model-archiver")
    return found


def _run_archiver(staging: Path, export_dir: Path, model_name: str, version: str) -> Path:
    # The archiver copies artifacts into tempfile.gettempdir()/<model_name>: a private TMPDIR keeps two
    # builds of the same model name apart.
    env = dict(os.environ, TMPDIR=str(staging / "tmp"))
    (staging / "tmp").mkdir()
    cmd = [_archiver(), "--model-name", model_name, "--version", version, "--handler",
           str(staging / HANDLER_FILE.name), "--extra-files", str(staging / "extra"), "--export-path",
           str(export_dir), "--force"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    mar = export_dir / f"{model_name}.mar"
    if proc.returncode != 0 or not mar.exists():
        raise ArchiveError(f"torch-model-archiver failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return mar


def build_archive(bundle_dir: str | Path, out_dir: str | Path, model_name: str = "onevision", version: str = "1.0",
                  parity_path: str | Path | None = None, envelope: str = "kservev2",
                  upload_to: str | None = None, allow_failed_parity: bool = False) -> ArchiveResult:
    """Write `<out_dir>/model-store/<model_name>.mar` + `config/config.properties` (+ parity.json), and
    upload the layout to `upload_to` (a local dir or s3:// URI) when given.

    A parity report must have judged this very bundle (same content digest) and passed; with
    `allow_failed_parity` a failed one is packaged and the manifest records the override."""
    bundle_dir, out_dir = Path(bundle_dir), Path(out_dir)
    if envelope not in ENVELOPES:
        raise ArchiveError(f"envelope must be one of {ENVELOPES}, got {envelope!r}")
    if not bundle_dir.is_dir():
        raise ArchiveError(f"bundle directory not found: {bundle_dir}")
    bundle = _bundle_identity(bundle_dir)
    parity = _read_parity(Path(parity_path), bundle, allow_failed_parity) if parity_path is not None else None
    override = parity is not None and not parity["passed"]
    manifest = build_manifest(bundle_dir, model_name, version, envelope, parity, bundle, override)

    model_store = out_dir / MODEL_STORE_DIR
    model_store.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="onevision-archive-") as tmp:
        staging = Path(tmp)
        extra = staging / "extra"  # the archiver copies this directory's *contents* to the archive root
        shutil.copytree(bundle_dir, extra / "bundle")
        (extra / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
        shutil.copy2(HANDLER_FILE, staging / HANDLER_FILE.name)
        mar_path = _run_archiver(staging, model_store, model_name, version)

    config = TorchServeConfig(models=(MarModel(model_name, version, mar_path.name),), envelope=envelope)
    config_path = config.write(out_dir / CONFIG_KEY)
    manifest_path = out_dir / MANIFEST_FILE
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    copied_parity = None
    (out_dir / PARITY_FILE).unlink(missing_ok=True)  # never leave an earlier build's verdict beside this one
    if parity_path is not None:
        copied_parity = out_dir / PARITY_FILE
        shutil.copyfile(parity_path, copied_parity)
    uploaded = None
    if upload_to:
        from onevision.storage import open_store

        store = open_store(upload_to)
        store.upload_dir(out_dir)
        uploaded = store.uri
    return ArchiveResult(out_dir, mar_path, config_path, manifest_path, copied_parity, manifest, uploaded)
