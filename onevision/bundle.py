"""A model bundle: everything one served model needs, in one self-contained directory. This module is the
one reader and writer of bundle.json (`BundleMeta`, `read_bundle_meta`, `is_bundle`).

    bundle.json          {"kind": "generator" | "cascade", "version", "created", "onevision",
                          "files": {relative path: sha256}}  (verify_bundle checks them at build and load)
    encoder/             image encoder (+ catalogue features)
    userfeatures/        user feature table (personalisation)
    vrq/ + generator/    kind generator
    cascade/             kind cascade
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from onevision.storage import PUBLISHED_MARKER

if TYPE_CHECKING:
    from onevision.contracts import Retriever
    from onevision.featurestore.live import FeastFeatures
    from onevision.generator.retriever import DecodeOptions

BUNDLE_FILE = "bundle.json"
FILES_KEY = "files"  # bundle.json: sha256 of every other file, by relative path
KINDS = ("generator", "cascade")


@dataclass(frozen=True)
class BundleMeta:
    """The contents of bundle.json."""

    kind: str  # one of KINDS
    version: str
    created: float | str | None = None  # seconds since the epoch
    onevision: str | None = None  # the library version that wrote it
    files: dict[str, str] | None = None  # sha256 by relative path; None: a bundle from before file manifests

    def to_json(self) -> dict:
        return {"kind": self.kind, "version": self.version, "created": self.created, "onevision": self.onevision,
                FILES_KEY: self.files}


def is_bundle(directory: Path | str) -> bool:
    return (Path(directory) / BUNDLE_FILE).exists()


def _copy(src: Path | None, dst: Path, what: str) -> None:
    if src is None:
        raise ValueError(f"a bundle needs the {what} directory")
    src = Path(src)
    if not src.is_dir():
        raise FileNotFoundError(f"{what} directory not found: {src}")
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("checkpoint.pt*"))


def write_bundle(kind: str, out_dir: Path, *, encoder_dir: Path, vrq_dir: Path | None = None,
                 generator_dir: Path | None = None, cascade_dir: Path | None = None,
                 userfeatures_dir: Path | None = None, version: str | None = None) -> Path:
    if kind not in KINDS:
        raise ValueError(f"bundle kind must be one of {KINDS}, got {kind!r}")
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    _copy(encoder_dir, out_dir / "encoder", "encoder")
    if kind == "generator":
        _copy(vrq_dir, out_dir / "vrq", "VRQ")
        _copy(generator_dir, out_dir / "generator", "generator")
        uf = userfeatures_dir or (Path(generator_dir) / "userfeatures")
        if Path(uf).is_dir():
            shutil.rmtree(out_dir / "generator" / "userfeatures", ignore_errors=True)
            _copy(uf, out_dir / "userfeatures", "user features")
    else:
        _copy(cascade_dir, out_dir / "cascade", "cascade")
    seal_bundle(out_dir, kind, version)
    return out_dir


def new_version() -> str:
    """A bundle version named by the time it was written."""
    return time.strftime("%Y%m%d%H%M%S")


def seal_bundle(bundle_dir: Path, kind: str, version: str | None = None) -> BundleMeta:
    """Write bundle.json for a directory holding a bundle's files: its kind, version (default: `new_version()`)
    and the sha256 of every file."""
    from onevision import __version__

    meta = BundleMeta(kind, version or new_version(), time.time(), __version__, file_hashes(bundle_dir))
    (Path(bundle_dir) / BUNDLE_FILE).write_text(json.dumps(meta.to_json(), indent=2) + "\n")
    return meta


class BundleIntegrityError(ValueError):
    """A bundle's files are not the ones bundle.json lists (missing, changed or extra)."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_hashes(bundle_dir: Path) -> dict[str, str]:
    """sha256 of every file of the bundle but bundle.json, by relative path."""
    root = Path(bundle_dir)
    return {p.relative_to(root).as_posix(): _sha256(p) for p in sorted(root.rglob("*"))
            if p.is_file() and p.relative_to(root).as_posix() not in (BUNDLE_FILE, PUBLISHED_MARKER)}


def verify_bundle(bundle_dir: Path | str, require_manifest: bool = True) -> BundleMeta:
    """bundle.json's metadata once every file it lists is present with its hash and nothing else is there;
    BundleIntegrityError naming what differs otherwise. A bundle written before file manifests existed has none:
    an error with `require_manifest`, else accepted as is."""
    root = Path(bundle_dir)
    meta = read_bundle_meta(root)
    expected = meta.files
    if expected is None:
        if require_manifest:
            raise BundleIntegrityError(f"{root / BUNDLE_FILE} lists no files to verify (a bundle from before "
                                       "file manifests); rebuild it (`onevision pipeline run` or `make run`)")
        return meta
    actual = file_hashes(root)
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    changed = sorted(k for k in set(expected) & set(actual) if expected[k] != actual[k])
    if missing or extra or changed:
        parts = [f"{label} {names[:5]}" + (f" and {len(names) - 5} more" if len(names) > 5 else "")
                 for label, names in (("missing", missing), ("changed", changed), ("unexpected", extra)) if names]
        raise BundleIntegrityError(f"bundle {root} does not match its manifest: {'; '.join(parts)}")
    return meta


def read_bundle_meta(bundle_dir: Path | str) -> BundleMeta:
    path = Path(bundle_dir) / BUNDLE_FILE
    if not path.exists():
        raise FileNotFoundError(f"not a model bundle (missing {path})")
    meta = json.loads(path.read_text())
    if not isinstance(meta, dict) or meta.get("kind") not in KINDS:
        got = meta.get("kind") if isinstance(meta, dict) else meta
        raise ValueError(f"{path}: kind must be one of {KINDS}, got {got!r}")
    if "version" not in meta:
        raise ValueError(f"{path}: has no version")
    files = meta.get(FILES_KEY)
    return BundleMeta(kind=meta["kind"], version=str(meta["version"]), created=meta.get("created"),
                      onevision=meta.get("onevision"), files=dict(files) if isinstance(files, dict) else None)


def bundle_digest(bundle_dir: Path | str) -> str:
    """sha256 of every file of the bundle (relative path and bytes, in path order): weights, SIDs, configs
    and bundle.json. Two bundles share a digest only if they are the same model, byte for byte."""
    root = Path(bundle_dir)
    read_bundle_meta(root)
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.relative_to(root).as_posix() != PUBLISHED_MARKER):
        rel = path.relative_to(root).as_posix().encode()
        h.update(len(rel).to_bytes(8, "big") + rel + path.stat().st_size.to_bytes(8, "big"))
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return "sha256:" + h.hexdigest()


def bundle_identity(bundle_dir: Path | str) -> dict:
    """What names one model: its kind, version and content digest (parity reports and archives carry it)."""
    meta = read_bundle_meta(Path(bundle_dir))
    return {"kind": meta.kind, "version": meta.version, "digest": bundle_digest(bundle_dir)}


def load_retriever(bundle_dir: Path | str, decode: DecodeOptions | None = None,
                   features: FeastFeatures | None = None) -> Retriever:
    """The bundle's Retriever: a GeneratorRetriever (decoding with `decode`, default the served options) or a
    Cascade, with the bundle's version. User features come from the bundle's frozen snapshot, or with `features`
    from that Feast repo (the snapshot then only answers for unknown users while the store is unreachable)."""
    bundle_dir = Path(bundle_dir)
    meta = verify_bundle(bundle_dir, require_manifest=False)
    if meta.kind == "generator":
        from onevision.generator.retriever import SERVING_DECODE, GeneratorRetriever

        gen = GeneratorRetriever.load(bundle_dir / "encoder", bundle_dir / "vrq", bundle_dir / "generator",
                                      bundle_dir / "userfeatures", decode or SERVING_DECODE, version=meta.version)
        return gen if features is None or gen.users is None else gen.with_users(features.open(gen.users))
    from onevision.cascade import Cascade

    cascade = Cascade.load(bundle_dir / "cascade", bundle_dir / "encoder", version=meta.version)
    if features is not None and cascade.ranker is not None:
        cascade.ranker.users = features.open(cascade.ranker.users)
    return cascade
