"""Helpers the components run: typed step configs from parameter dicts, input artifacts, scalar metrics."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from kfp import dsl

from components.runtime import MissingArtifactError, flat_scalars, input_dir, log_scalars, step_config
from onevision.steps import EncoderStepConfig, tiny_configs


def test_step_config_applies_overrides_to_the_preset() -> None:
    config = step_config("encoder", "tiny", {"train": {"epochs": 1}, "model": {"widths": [8, 16]}})
    tiny = tiny_configs().encoder
    assert config == EncoderStepConfig(dataclasses.replace(tiny.model, widths=(8, 16)), dataclasses.replace(tiny.train, epochs=1))


def test_step_config_defaults_to_the_config_class_defaults() -> None:
    assert step_config("encoder") == EncoderStepConfig()


def test_step_config_names_unknown_keys_and_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown encoder config.train key\(s\) \['epoch'\]; expected some of .*'epochs'"):
        step_config("encoder", "default", {"train": {"epoch": 3}})


def test_step_config_rejects_an_unknown_preset() -> None:
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        step_config("vrq", "huge")


def test_world_config_takes_the_seed_over_the_preset() -> None:
    assert step_config("world", "tiny", {"seed": 3}).items == tiny_configs().world.items
    assert step_config("world", "tiny", {"seed": 3}).seed == 3


def test_flat_scalars_flattens_nested_values_and_lists_and_drops_text() -> None:
    values = {"vrq": {"collision_rate": 0.0, "perplexity": [3.0, 2.5], "ok": True}, "table": "| a |", "n": float("nan")}
    assert flat_scalars(values) == {"vrq.collision_rate": 0.0, "vrq.perplexity.1": 3.0, "vrq.perplexity.2": 2.5,
                                    "vrq.ok": 1.0}


def test_log_scalars_logs_into_a_kfp_metrics_artifact(tmp_path: Path) -> None:
    metrics = dsl.Metrics(name="metrics", uri=str(tmp_path / "m"), metadata={})
    log_scalars(metrics, {"recall@10": 0.5, "model": "generator"})
    assert metrics.metadata.pop("peak_rss_mb") > 10  # this process's peak memory: at least the interpreter
    assert metrics.metadata == {"recall@10": 0.5}


def test_log_scalars_writes_the_metrics_file_so_the_artifact_exists(tmp_path: Path) -> None:
    metrics = dsl.Metrics(name="metrics", uri=str(tmp_path / "m"), metadata={})
    log_scalars(metrics, {"a": 1.0})
    log_scalars(metrics, {"b": 2.0})
    written = json.loads((tmp_path / "m").read_text())
    assert written.pop("peak_rss_mb") > 0 and written == {"a": 1.0, "b": 2.0}


def test_input_dir_names_a_missing_artifact(tmp_path: Path) -> None:
    artifact = dsl.Model(name="encoder", uri=str(tmp_path / "encoder"), metadata={})
    with pytest.raises(MissingArtifactError, match="input artifact 'encoder' .* has no content at"):
        input_dir(artifact, "encoder")


def test_input_dir_names_an_artifact_that_was_not_passed() -> None:
    with pytest.raises(MissingArtifactError, match="input artifact 'generator stage 1' was not provided"):
        input_dir(None, "generator stage 1")


def test_struct_floats_become_the_integers_the_config_declares() -> None:
    """KFP passes dict parameters through protobuf Struct: {"items": 500} arrives as {"items": 500.0}."""
    config = step_config("world", "default", {"items": 500.0, "drift": {"start_day": 3.0}})
    assert config.items == 500 and type(config.items) is int
    assert config.drift.start_day == 3 and type(config.drift.start_day) is int


@pytest.mark.parametrize("overrides, fragment", [({"items": 2.5}, "world config.items"),
                                                 ({"items": "many"}, "world config.items"),
                                                 ({"drift": {"start_day": 1.5}}, "world config.drift.start_day")])
def test_a_value_of_the_wrong_type_names_its_field(overrides, fragment) -> None:
    with pytest.raises(ValueError, match=fragment):
        step_config("world", "default", overrides)


@pytest.mark.parametrize("step", ["world", "encoder", "vrq", "cascade", "generator", "eval"])
def test_every_step_config_validates_its_own_values(step) -> None:
    import dataclasses

    base = step_config(step, "tiny")
    first = dataclasses.fields(base)[0].name
    assert step_config(step, "tiny", {first: getattr(base, first)}) == base
