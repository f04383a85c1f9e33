"""Component bodies called directly (`.python_func`) on small inputs, as kubeflow/pipelines-components does."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from kfp import dsl

from components.gate_report import gate_failure_report
from components.parity import parity_gate
from components.runtime import MissingArtifactError

GATED = {"recall@10": 0.50, "ndcg@10": 0.30, "ctr_proxy@10": 0.08, "cvr_proxy@10": 0.40}


def _evaluation(tmp_path: Path, name: str, metrics: dict) -> dsl.Artifact:
    directory = tmp_path / name
    directory.mkdir()
    (directory / "metrics.json").write_text(json.dumps({"model": name, "n_queries": 100, **metrics}))
    return dsl.Artifact(name=name, uri=str(directory), metadata={})


def _outputs(tmp_path: Path) -> dict:
    return {
        "parity": dsl.Artifact(name="parity", uri=str(tmp_path / "out" / "parity"), metadata={}),
        "report": dsl.Markdown(name="report", uri=str(tmp_path / "out" / "report"), metadata={}),
        "report_html": dsl.HTML(name="report_html", uri=str(tmp_path / "out" / "report_html"), metadata={}),
        "metrics": dsl.Metrics(name="metrics", uri=str(tmp_path / "out" / "metrics"), metadata={}),
    }


def test_parity_gate_passes_a_generator_within_epsilon(tmp_path: Path) -> None:
    generator = _evaluation(tmp_path, "generator", {k: v * 0.99 for k, v in GATED.items()})
    outputs = _outputs(tmp_path)
    result = parity_gate.python_func(generator, _evaluation(tmp_path, "cascade", GATED), epsilon=0.02, **outputs)
    assert result.passed is True
    assert outputs["metrics"].metadata["passed"] == 1.0
    assert outputs["metrics"].metadata["ratio.recall@10"] == pytest.approx(0.99)
    assert Path(outputs["report"].path).read_text().startswith("# Parity: generator vs cascade — PASSED")
    assert json.loads((Path(outputs["parity"].path) / "parity.json").read_text())["passed"] is True


def test_parity_gate_with_negative_epsilon_fails_an_equal_generator(tmp_path: Path) -> None:
    outputs = _outputs(tmp_path)
    result = parity_gate.python_func(_evaluation(tmp_path, "generator", GATED), _evaluation(tmp_path, "cascade", GATED),
                                     epsilon=-0.1, **outputs)
    assert result.passed is False
    assert len(outputs["parity"].metadata["reasons"]) == len(GATED)


def test_parity_gate_names_a_missing_evaluation(tmp_path: Path) -> None:
    absent = dsl.Artifact(name="evaluation", uri=str(tmp_path / "nothing"), metadata={})
    with pytest.raises(MissingArtifactError, match="'generator_evaluation'"):
        parity_gate.python_func(absent, _evaluation(tmp_path, "cascade", GATED), epsilon=0.02, **_outputs(tmp_path))


def test_gate_failure_report_surfaces_the_reasons(tmp_path: Path) -> None:
    outputs = _outputs(tmp_path)
    parity_gate.python_func(_evaluation(tmp_path, "generator", {**GATED, "recall@10": 0.1}),
                            _evaluation(tmp_path, "cascade", GATED), epsilon=0.02, **outputs)
    reasons = dsl.Markdown(name="reasons", uri=str(tmp_path / "reasons.md"), metadata={})
    gate_failure_report.python_func(parity=outputs["parity"], reasons=reasons)
    text = Path(reasons.path).read_text()
    assert text.startswith("# Parity gate FAILED — not archived, not deployed")
    assert "- recall@10: generator 0.100 < cascade 0.500" in text


def test_the_gate_component_defaults_to_the_gates_epsilon() -> None:
    """A lightweight component ships its own source, so its default must be a literal: it is checked against the
    one definition here."""
    import inspect

    from components.parity import parity_gate
    from onevision.evaluation.parity import ParityGate

    assert inspect.signature(parity_gate.python_func).parameters["epsilon"].default == ParityGate.epsilon
