"""The promotion gate: a passing parity report must exist for the model, and must have judged exactly it
(the report's `bundles.generator.digest` equals the digest in the archive manifest under the storage URI)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from onevision.evaluation.parity import PARITY_JSON
from serving.canary.errors import ParityGateError

# Where the report sits under a model's storage URI, tried in this order.
PARITY_KEYS = (PARITY_JSON, f"parity/{PARITY_JSON}")


@dataclass(frozen=True)
class ParityVerdict:
    location: str
    passed: bool
    report: dict[str, Any]


def _split(location: str) -> tuple[str, str]:
    parent, _, key = location.rstrip("/").rpartition("/")
    return (parent or ".", key)


def _read(root: str, key: str) -> dict[str, Any] | None:
    """The report at `root`/`key`, or None if there is none; other failures raise ParityGateError."""
    from onevision.evaluation.parity import ParityFormatError, parse_verdict
    from onevision.storage import ArtifactNotFoundError, ArtifactStoreError, open_store

    location = f"{root.rstrip('/')}/{key}"
    try:
        return parse_verdict(open_store(root).get_text(key), f"parity report {location}")
    except ArtifactNotFoundError:
        return None
    except ParityFormatError as exc:
        raise ParityGateError(str(exc)) from exc
    except (ArtifactStoreError, ValueError) as exc:
        raise ParityGateError(f"cannot read parity report {location}: {exc}") from exc


def read_parity(storage_uri: str, parity: str | None = None) -> ParityVerdict:
    """The report at `parity` (a file path or URI) if given, else the first of PARITY_KEYS under `storage_uri`."""
    candidates = [_split(parity)] if parity else [(storage_uri, key) for key in PARITY_KEYS]
    for root, key in candidates:
        report = _read(root, key)
        if report is not None:
            return ParityVerdict(location=f"{root.rstrip('/')}/{key}", passed=report["passed"], report=report)
    tried = ", ".join(f"{root.rstrip('/')}/{key}" for root, key in candidates)
    raise ParityGateError(
        f"promotion of {storage_uri} refused: no parity report found (tried {tried}); run the parity gate for "
        "this model first or pass --parity PATH"
    )


def model_identity(storage_uri: str) -> dict[str, Any]:
    """The bundle identity (kind, version, digest) in the archive manifest under `storage_uri`."""
    from onevision.storage import ArtifactNotFoundError, ArtifactStoreError, open_store
    from serving.archive import MANIFEST_FILE

    location = f"{storage_uri.rstrip('/')}/{MANIFEST_FILE}"
    try:
        manifest = open_store(storage_uri).get_json(MANIFEST_FILE)
    except ArtifactNotFoundError:
        raise ParityGateError(
            f"promotion of {storage_uri} refused: no {MANIFEST_FILE} there, so the model cannot be matched to a "
            "parity verdict; publish it with `onevision serve build --upload-to`") from None
    except (ArtifactStoreError, ValueError) as exc:
        raise ParityGateError(f"cannot read {location}: {exc}") from exc
    bundle = manifest.get("bundle") if isinstance(manifest, dict) else None
    if not isinstance(bundle, dict) or not isinstance(bundle.get("digest"), str):
        raise ParityGateError(f"{location} records no bundle digest; rebuild the archive with `onevision serve build`")
    return bundle


def require_passing_parity(storage_uri: str, parity: str | None = None) -> ParityVerdict:
    from onevision.evaluation.parity import ParityBindingError, require_verdict_for, verdict_reasons

    verdict = read_parity(storage_uri, parity)
    if not verdict.passed:
        why = verdict_reasons(verdict.report)
        raise ParityGateError(
            f"promotion of {storage_uri} refused: parity report {verdict.location} says passed=false"
            + (f": {why}" if why else "")
        )
    try:
        require_verdict_for(verdict.report, model_identity(storage_uri), f"parity report {verdict.location}")
    except ParityBindingError as exc:
        raise ParityGateError(f"promotion of {storage_uri} refused: {exc}") from None
    return verdict
