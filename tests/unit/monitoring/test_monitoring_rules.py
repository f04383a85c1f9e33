"""Monitoring rules: the packaged default loads, bad rules are rejected naming the problem."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from monitoring.rules import DEFAULT_RULES_PATH, load_rules


def test_the_default_rules_test_every_family_with_rate_suited_methods() -> None:
    rules = load_rules()
    by_name = {t.name: t for t in rules.drift.tests}
    assert {t.family for t in rules.drift.tests} == {"outcome", "input", "prediction"}
    assert (by_name["ctr"].column, by_name["ctr"].method) == ("clicked", "z")
    assert by_name["ctr_per_request"].method == "psi"
    assert by_name["sid_prefix"].method == "chisquare"


def _write(tmp_path: Path, mutate) -> Path:
    data = yaml.safe_load(DEFAULT_RULES_PATH.read_text())
    mutate(data)
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_categorical_only_method_on_a_numerical_column_is_rejected(tmp_path: Path) -> None:
    def mutate(d: dict) -> None:
        d["drift"]["tests"][2]["method"] = "z"  # ctr_per_request (expected_ctr) is numerical

    with pytest.raises(ValueError, match="'z' does not apply to numerical column 'expected_ctr'"):
        load_rules(_write(tmp_path, mutate))


def test_an_unknown_column_is_rejected_naming_the_known_ones(tmp_path: Path) -> None:
    def mutate(d: dict) -> None:
        d["drift"]["tests"][0]["column"] = "clicks_per_day"

    with pytest.raises(ValueError, match="unknown column 'clicks_per_day'"):
        load_rules(_write(tmp_path, mutate))


def test_an_alert_on_a_family_without_tests_is_rejected(tmp_path: Path) -> None:
    def mutate(d: dict) -> None:
        d["drift"]["tests"] = [t for t in d["drift"]["tests"] if t["family"] != "input"]

    with pytest.raises(ValueError, match="input_drift"):
        load_rules(_write(tmp_path, mutate))


def test_a_custom_threshold_is_used(tmp_path: Path) -> None:
    def mutate(d: dict) -> None:
        d["drift"]["tests"][0]["threshold"] = 0.001

    assert load_rules(_write(tmp_path, mutate)).drift.tests[0].threshold == 0.001
