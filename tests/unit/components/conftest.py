"""Fixtures of the component tests: the tiny world and models of tests/conftest.py as KFP input artifacts,
and the chain that a generator bundle goes through after training (evaluation -> parity -> archive)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from component_artifacts import QUICK_EVAL, artifact, metrics
from kfp import dsl

from components.archive import build_archive
from components.evaluate import evaluate_model
from components.parity import parity_gate


@pytest.fixture(scope="session")
def world(tiny_world_dir: Path) -> dsl.Dataset:
    return artifact(dsl.Dataset, tiny_world_dir)


@pytest.fixture(scope="session")
def encoder(tiny_models) -> dsl.Model:
    return artifact(dsl.Model, tiny_models.encoder)


@pytest.fixture(scope="session")
def generator_bundle(tiny_models) -> dsl.Model:
    """With the metadata package_bundle gives it (its bundle.json)."""
    manifest = json.loads((tiny_models.generator_bundle / "bundle.json").read_text())
    return artifact(dsl.Model, tiny_models.generator_bundle, **manifest)


@pytest.fixture(scope="session")
def generator_evaluation(generator_bundle: dsl.Model, world: dsl.Dataset,
                         tmp_path_factory: pytest.TempPathFactory) -> dsl.Artifact:
    out = tmp_path_factory.mktemp("generator_evaluation")
    evaluation = artifact(dsl.Artifact, out / "evaluation")
    evaluate_model.python_func(generator_bundle, world, evaluation, metrics(out / "metrics"), preset="tiny",
                               config=QUICK_EVAL)
    return evaluation


@pytest.fixture(scope="session")
def passed_parity(generator_evaluation: dsl.Artifact, tmp_path_factory: pytest.TempPathFactory) -> dsl.Artifact:
    """A passing verdict on the generator bundle: it is gated against its own metrics (every ratio is 1)."""
    out = tmp_path_factory.mktemp("parity")
    parity = artifact(dsl.Artifact, out / "parity")
    result = parity_gate.python_func(generator_evaluation, generator_evaluation, parity,
                                     artifact(dsl.Markdown, out / "report.md"), artifact(dsl.HTML, out / "report.html"),
                                     metrics(out / "metrics"), epsilon=0.0)
    assert result.passed
    return parity


@pytest.fixture(scope="session")
def model_store(generator_bundle: dsl.Model, passed_parity: dsl.Artifact,
                tmp_path_factory: pytest.TempPathFactory) -> dsl.Model:
    store = artifact(dsl.Model, tmp_path_factory.mktemp("archive") / "model_store")
    build_archive.python_func(generator_bundle, passed_parity, store, model_name="onevision")
    return store
