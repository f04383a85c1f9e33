"""The `onevision-refresh` pipeline's compiled IR: its steps, the two gates before the canary, caching."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipelines.compile import COMPILED_DIR, compile_pipeline, compiled_path

REFRESH = "onevision-refresh"
TASKS = {
    "ingest-world", "validate-data", "new-catalogue-rows", "fetch-bundle", "fetch-bundle-2", "refresh-catalogue",
    "refresh-catalogue-2", "evaluate-listing", "evaluate-listing-2", "evaluate-listing-3", "evaluate-listing-4",
    "refresh-gate", "refresh-gate-2", "evaluate-model", "evaluate-model-2", "parity-gate", "build-archive",
    "deploy-canary", "gate-failure-report",
}


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict:
    path = compile_pipeline(REFRESH, tmp_path_factory.mktemp("compiled"))
    return next(yaml.safe_load_all(path.read_text()))


def _all_tasks(spec: dict) -> dict[str, dict]:
    tasks = dict(spec["root"]["dag"]["tasks"])
    for component in spec["components"].values():
        tasks.update(component.get("dag", {}).get("tasks", {}))
    return tasks


def test_committed_ir_is_up_to_date_with_the_code(spec: dict) -> None:
    committed = compiled_path(REFRESH, COMPILED_DIR)
    assert committed.exists(), f"{committed} is missing: run `onevision pipeline compile`"
    assert next(yaml.safe_load_all(committed.read_text())) == spec, f"{committed} is stale: recompile it"


def test_the_pipeline_has_every_step(spec: dict) -> None:
    assert {name for name in _all_tasks(spec) if not name.startswith("condition-")} == TASKS


def test_the_new_rows_are_validated_before_anything_is_refreshed(spec: dict) -> None:
    tasks = _all_tasks(spec)
    assert "validate-data" in tasks["new-catalogue-rows"]["dependentTasks"]
    assert tasks["validate-data"]["cachingOptions"].get("enableCache", False) is False
    for refresh in ("refresh-catalogue", "refresh-catalogue-2"):
        assert "new-catalogue-rows" in tasks[refresh]["dependentTasks"]


def test_the_canary_needs_the_refresh_gate_which_folds_in_parity(spec: dict) -> None:
    tasks = _all_tasks(spec)
    members = {name: set(spec["components"][t["componentRef"]["name"]]["dag"]["tasks"])
               for name, t in tasks.items() if t.get("triggerPolicy", {}).get("condition")}
    passed = next(n for n, m in members.items() if m == {"build-archive", "deploy-canary"})
    failed = next(n for n, m in members.items() if m == {"gate-failure-report"})
    condition = "inputs.parameter_values['pipelinechannel--refresh-gate-passed'] == true"
    assert tasks[passed]["triggerPolicy"]["condition"] == condition
    assert tasks[failed]["triggerPolicy"]["condition"] == f"!({condition})"
    assert tasks["refresh-gate"]["inputs"]["parameters"]["parity_passed"]["taskOutputParameter"]["producerTask"] \
        == "parity-gate"
    assert set(tasks["deploy-canary"]["dependentTasks"]) == {"build-archive"}
    assert tasks["deploy-canary"]["cachingOptions"].get("enableCache", False) is False


def test_the_gate_thresholds_default_to_the_refresh_gate(spec: dict) -> None:
    from onevision.catalogue.gate import RefreshGate

    params = spec["root"]["inputDefinitions"]["parameters"]
    assert params["new_within"]["defaultValue"] == RefreshGate.new_within
    assert params["old_tolerance"]["defaultValue"] == RefreshGate.old_tolerance
