from __future__ import annotations

import json
import zipfile
from pathlib import Path

from kfp import dsl


def test_the_archive_packs_the_gated_bundle_in_kserve_layout(model_store: dsl.Model, generator_bundle: dsl.Model,
                                                            passed_parity: dsl.Artifact) -> None:
    root = Path(model_store.path)
    mar = root / "model-store" / "onevision.mar"
    assert model_store.metadata == {"model_name": "onevision", "bundle_version": generator_bundle.metadata["version"],
                                    "mar_path": str(mar)}
    assert (root / "config" / "config.properties").is_file()
    assert json.loads((root / "parity.json").read_text()) == json.loads(
        (Path(passed_parity.path) / "parity.json").read_text())
    with zipfile.ZipFile(mar) as archive:
        assert "bundle/bundle.json" in archive.namelist()
