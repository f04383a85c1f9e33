from __future__ import annotations

import json
from pathlib import Path

import pytest
from component_artifacts import artifact
from kfp import dsl

from components.bundle import package_bundle
from components.runtime import MissingArtifactError


def test_a_cascade_bundle_holds_the_encoder_and_the_cascade(tiny_models, encoder: dsl.Model, tmp_path: Path) -> None:
    bundle = artifact(dsl.Model, tmp_path / "bundle")
    package_bundle.python_func("cascade", encoder, bundle, cascade=artifact(dsl.Model, tiny_models.cascade))
    manifest = json.loads((tmp_path / "bundle" / "bundle.json").read_text())
    assert manifest["kind"] == "cascade" and bundle.metadata == manifest
    assert (tmp_path / "bundle" / "encoder").is_dir() and (tmp_path / "bundle" / "cascade").is_dir()


def test_a_generator_bundle_holds_the_encoder_vrq_generator_and_user_features(tiny_models, encoder: dsl.Model,
                                                                              tmp_path: Path) -> None:
    bundle = artifact(dsl.Model, tmp_path / "bundle")
    package_bundle.python_func("generator", encoder, bundle, vrq=artifact(dsl.Model, tiny_models.vrq),
                               generator=artifact(dsl.Model, tiny_models.generator[3]))
    assert bundle.metadata["kind"] == "generator"
    assert {p.name for p in (tmp_path / "bundle").iterdir() if p.is_dir()} >= {"encoder", "vrq", "generator",
                                                                              "userfeatures"}


def test_a_generator_bundle_names_its_missing_generator(tiny_models, encoder: dsl.Model, tmp_path: Path) -> None:
    with pytest.raises(MissingArtifactError, match="'generator' was not provided"):
        package_bundle.python_func("generator", encoder, artifact(dsl.Model, tmp_path / "bundle"),
                                   vrq=artifact(dsl.Model, tiny_models.vrq))


def test_an_unknown_bundle_kind_is_refused(encoder: dsl.Model, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="bundle kind must be 'generator' or 'cascade', got 'ranker'"):
        package_bundle.python_func("ranker", encoder, artifact(dsl.Model, tmp_path / "bundle"))
