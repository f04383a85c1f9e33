"""The compiled IR of the pipelines: tasks, edges, the gate condition, artifact types, caching, resources, secrets."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from onevision.image import DEFAULT_IMAGE, IMAGE_ENV_VAR
from pipelines.compile import COMPILED_DIR, compile_all, compiled_path

TRAIN_TASKS = {
    "ingest-world", "validate-data", "train-encoder", "train-vrq", "train-cascade", "train-generator",
    "train-generator-2", "train-generator-3", "package-bundle", "package-bundle-2", "evaluate-model",
    "evaluate-model-2", "parity-gate", "build-archive", "deploy-canary", "gate-failure-report",
}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("compiled")
    return {p.stem: p for p in compile_all(out)}


def _docs(path: Path) -> list[dict]:
    """The pipeline spec, then the platform (Kubernetes) spec."""
    return list(yaml.safe_load_all(path.read_text()))


@pytest.fixture(scope="module")
def train(compiled: dict[str, Path]) -> dict:
    return _docs(compiled["onevision-train"])[0]


def _platform(path: Path) -> dict:
    return _docs(path)[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def _all_tasks(spec: dict) -> dict[str, dict]:
    """Every task of the root DAG and of nested (condition) DAGs, by task name."""
    tasks = dict(spec["root"]["dag"]["tasks"])
    for component in spec["components"].values():
        tasks.update(component.get("dag", {}).get("tasks", {}))
    return tasks


def _outputs(spec: dict, task: str) -> dict[str, str]:
    component = spec["components"][_all_tasks(spec)[task]["componentRef"]["name"]]
    return {name: a["artifactType"]["schemaTitle"]
            for name, a in component.get("outputDefinitions", {}).get("artifacts", {}).items()}


@pytest.mark.parametrize("name", ["onevision-train", "onevision-drift"])
def test_committed_ir_is_up_to_date_with_the_code(name: str, compiled: dict[str, Path]) -> None:
    committed = compiled_path(name, COMPILED_DIR)
    assert committed.exists(), f"{committed} is missing: run `onevision pipeline compile`"
    assert _docs(committed) == _docs(compiled[name]), (
        f"{committed} is stale: run `onevision pipeline compile` and commit the result"
    )


def test_train_pipeline_has_every_step_as_a_task(train: dict) -> None:
    leaves = {name for name, t in _all_tasks(train).items() if not name.startswith("condition")}
    assert leaves == TRAIN_TASKS


@pytest.mark.parametrize(("task", "upstream"), [
    ("validate-data", {"ingest-world"}),
    ("train-encoder", {"ingest-world", "validate-data"}),
    ("train-vrq", {"ingest-world", "train-encoder"}),
    ("train-cascade", {"ingest-world", "train-encoder"}),
    ("train-generator", {"ingest-world", "train-encoder", "train-vrq"}),
    ("train-generator-2", {"ingest-world", "train-encoder", "train-vrq", "train-generator"}),
    ("train-generator-3", {"ingest-world", "train-encoder", "train-vrq", "train-generator-2", "train-cascade"}),
    ("package-bundle", {"train-encoder", "train-vrq", "train-generator-3"}),
    ("package-bundle-2", {"train-encoder", "train-cascade"}),
    ("evaluate-model", {"ingest-world", "package-bundle"}),
    ("evaluate-model-2", {"ingest-world", "package-bundle-2"}),
    ("parity-gate", {"evaluate-model", "evaluate-model-2"}),
])
def test_train_pipeline_edges(train: dict, task: str, upstream: set[str]) -> None:
    assert set(_all_tasks(train)[task].get("dependentTasks", [])) == upstream


def test_archive_and_deploy_run_only_when_the_gate_passed(train: dict) -> None:
    tasks = _all_tasks(train)
    branches = {name: t for name, t in tasks.items() if t.get("triggerPolicy", {}).get("condition")}
    members = {name: set(train["components"][t["componentRef"]["name"]]["dag"]["tasks"]) for name, t in branches.items()}
    passed = next(n for n, m in members.items() if m == {"build-archive", "deploy-canary"})
    failed = next(n for n, m in members.items() if m == {"gate-failure-report"})
    gate = "inputs.parameter_values['pipelinechannel--parity-gate-passed'] == true"
    assert branches[passed]["triggerPolicy"]["condition"] == gate
    assert branches[failed]["triggerPolicy"]["condition"] == f"!({gate})"
    assert set(tasks["deploy-canary"]["dependentTasks"]) == {"build-archive"}


@pytest.mark.parametrize(("task", "output", "schema"), [
    ("ingest-world", "world", "system.Dataset"),
    ("validate-data", "summary", "system.Markdown"),
    ("validate-data", "metrics", "system.Metrics"),
    ("train-encoder", "encoder", "system.Model"),
    ("train-vrq", "vrq", "system.Model"),
    ("train-vrq", "metrics", "system.Metrics"),
    ("train-generator-3", "generator", "system.Model"),
    ("evaluate-model", "metrics", "system.Metrics"),
    ("parity-gate", "report", "system.Markdown"),
    ("parity-gate", "report_html", "system.HTML"),
    ("build-archive", "model_store", "system.Model"),
    ("gate-failure-report", "reasons", "system.Markdown"),
])
def test_artifact_types(train: dict, task: str, output: str, schema: str) -> None:
    assert _outputs(train, task)[output] == schema


def test_gate_decision_is_a_boolean_output(train: dict) -> None:
    component = train["components"][_all_tasks(train)["parity-gate"]["componentRef"]["name"]]
    assert component["outputDefinitions"]["parameters"]["passed"]["parameterType"] == "BOOLEAN"


def test_validation_and_deploy_are_never_cached_and_training_is(train: dict) -> None:
    tasks = _all_tasks(train)
    caching = {name: t["cachingOptions"].get("enableCache", False) for name, t in tasks.items() if name in TRAIN_TASKS}
    assert {n for n, on in caching.items() if not on} == {"validate-data", "deploy-canary"}


def test_every_step_requests_and_limits_cpu_and_memory(train: dict) -> None:
    for name, executor in train["deploymentSpec"]["executors"].items():
        resources = executor["container"]["resources"]
        assert {"cpuRequest", "cpuLimit", "memoryRequest", "memoryLimit"} <= set(resources), name
        assert resources["cpuRequest"] <= resources["cpuLimit"], name


def test_every_step_runs_in_the_project_image(train: dict) -> None:
    images = {e["container"]["image"] for e in train["deploymentSpec"]["executors"].values()}
    assert images == {DEFAULT_IMAGE}


def test_image_setting_reads_the_environment(monkeypatch) -> None:
    from onevision.image import image

    monkeypatch.setenv(IMAGE_ENV_VAR, "registry.example/onevision:dev")
    assert image() == "registry.example/onevision:dev"


def test_s3_credentials_come_from_a_secret_not_parameters(train: dict, compiled: dict[str, Path]) -> None:
    executors = _platform(compiled["onevision-train"])
    with_secret = {name for name, cfg in executors.items() if cfg.get("secretAsEnv")}
    assert with_secret == {"exec-ingest-world", "exec-deploy-canary"}
    env = {e["envVar"] for cfg in executors.values() for s in cfg["secretAsEnv"] for e in s["keyToEnv"]}
    assert env == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    parameters = set(train["root"]["inputDefinitions"]["parameters"])
    assert not {p for p in parameters if "key" in p.lower() or "password" in p.lower()}


def test_drift_pipeline_runs_the_uncached_drift_report(compiled: dict[str, Path]) -> None:
    spec = _docs(compiled["onevision-drift"])[0]
    tasks = _all_tasks(spec)
    for name in ("drift-report", "drift-report-2", "join-events"):
        assert tasks[name]["cachingOptions"].get("enableCache", False) is False
    assert _outputs(spec, "drift-report")["report_html"] == "system.HTML"
    assert {"exec-drift-report", "exec-join-events"} <= set(_platform(compiled["onevision-drift"]))


def test_drift_pipeline_joins_the_event_sink_only_when_it_is_given(compiled: dict[str, Path]) -> None:
    spec = _docs(compiled["onevision-drift"])[0]
    tasks = _all_tasks(spec)
    branches = {name: set(spec["components"][t["componentRef"]["name"]]["dag"]["tasks"])
                for name, t in tasks.items() if t.get("triggerPolicy", {}).get("condition")}
    conditions = {frozenset(members): tasks[name]["triggerPolicy"]["condition"] for name, members in branches.items()}
    without = "inputs.parameter_values['pipelinechannel--events_uri'] == ''"
    assert conditions[frozenset({"drift-report"})] == without
    assert conditions[frozenset({"join-events", "drift-report-2", "condition-4"})] == f"!({without})"
    reads = tasks["drift-report-2"]["inputs"]["parameters"]["current_uri"]
    assert reads["taskOutputParameter"] == {"outputParameterKey": "log_uri", "producerTask": "join-events"}


def test_drift_pipeline_materialises_user_features_after_the_join_only_with_a_repo(compiled: dict[str, Path]) -> None:
    spec = _docs(compiled["onevision-drift"])[0]
    tasks = _all_tasks(spec)
    assert tasks["condition-4"]["triggerPolicy"]["condition"] == "inputs.parameter_values['pipelinechannel--feature_repo'] != ''"
    joined = tasks["condition-4"]["inputs"]["parameters"]["pipelinechannel--join-events-log_uri"]
    assert joined["taskOutputParameter"] == {"outputParameterKey": "log_uri", "producerTask": "join-events"}
    reads = tasks["materialize-features"]["inputs"]["parameters"]["log_uri"]
    assert reads == {"componentInputParameter": "pipelinechannel--join-events-log_uri"}
    assert spec["root"]["inputDefinitions"]["parameters"]["feature_repo"]["defaultValue"] == ""
