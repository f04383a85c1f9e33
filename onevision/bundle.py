"""A model bundle: everything one served model needs, in one self-contained directory.

    bundle.json          {"kind": "generator" | "cascade", "version", "created", "onevision"}
    encoder/             image encoder (+ catalogue features)
    userfeatures/        user feature table (personalisation)
    vrq/ + generator/    kind generator
    cascade/             kind cascade
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

BUNDLE_FILE = "bundle.json"
KINDS = ("generator", "cascade")


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
    from onevision import __version__

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
    meta = {"kind": kind, "version": version or time.strftime("%Y%m%d%H%M%S"), "created": time.time(),
            "onevision": __version__}
    (out_dir / BUNDLE_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return out_dir


def read_bundle_meta(bundle_dir: Path) -> dict:
    path = Path(bundle_dir) / BUNDLE_FILE
    if not path.exists():
        raise FileNotFoundError(f"not a model bundle (missing {path})")
    meta = json.loads(path.read_text())
    if meta.get("kind") not in KINDS:
        raise ValueError(f"{path}: kind must be one of {KINDS}, got {meta.get('kind')!r}")
    return meta


def load_retriever(bundle_dir: Path | str, beam_width: int | None = None):
    """The bundle's Retriever: a GeneratorRetriever or a Cascade, ready for `retrieve(images, user_ids, k)`."""
    bundle_dir = Path(bundle_dir)
    meta = read_bundle_meta(bundle_dir)
    if meta["kind"] == "generator":
        from onevision.generator.retriever import GeneratorRetriever

        from onevision.generator.decode import SERVING_BEAM_WIDTH, SERVING_PRUNING

        retriever = GeneratorRetriever.load(bundle_dir / "encoder", bundle_dir / "vrq", bundle_dir / "generator",
                                            bundle_dir / "userfeatures", pruning=SERVING_PRUNING,
                                            beam_width=SERVING_BEAM_WIDTH if beam_width is None else beam_width)
    else:
        from onevision.cascade import Cascade

        retriever = Cascade.load(bundle_dir / "cascade", bundle_dir / "encoder")
    retriever.version = meta["version"]
    return retriever
