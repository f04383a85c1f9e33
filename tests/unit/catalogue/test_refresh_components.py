"""The refresh pipeline's components, called as their bodies run in a task (`.python_func`)."""
from __future__ import annotations

import json
from pathlib import Path

from kfp import dsl

from components.fetch_bundle import fetch_bundle
from components.listing_eval import evaluate_listing
from components.new_rows import new_catalogue_rows
from components.refresh import refresh_catalogue
from components.refresh_gate import refresh_gate


def _artifact(kind, path: Path, **metadata):
    return kind(name=Path(path).name, uri=str(path), metadata=dict(metadata))


def test_the_components_refresh_a_bundle_and_gate_it(new_item_models, tmp_path: Path) -> None:
    world = _artifact(dsl.Dataset, new_item_models.world)
    rows = _artifact(dsl.Dataset, tmp_path / "rows")
    new_catalogue_rows.python_func(world, rows)
    assert rows.metadata["items"] > 0 and (tmp_path / "rows" / "items.parquet").exists()

    bundle = _artifact(dsl.Model, tmp_path / "bundle")
    fetch_bundle.python_func(str(new_item_models.cascade_bundle), bundle)
    assert bundle.metadata["kind"] == "cascade"
    refreshed = _artifact(dsl.Model, tmp_path / "refreshed")
    refresh_catalogue.python_func(bundle, rows, refreshed, preset="tiny")
    assert refreshed.metadata["added"] == rows.metadata["items"] and refreshed.metadata["kind"] == "cascade"

    evaluations = {}
    for label, model in (("before", bundle), ("after", refreshed)):
        evaluations[label] = _artifact(dsl.Artifact, tmp_path / label)
        evaluate_listing.python_func(model, world, evaluations[label], _artifact(dsl.Metrics, tmp_path / f"m-{label}"),
                                     preset="tiny")
    assert json.loads((tmp_path / "before" / "listing_recall.json").read_text())["new"] == 0.0
    gate, report = _artifact(dsl.Artifact, tmp_path / "gate"), _artifact(dsl.Markdown, tmp_path / "gate.md")
    strict = refresh_gate.python_func(evaluations["before"], evaluations["after"], gate, report, new_within=0.0,
                                      old_tolerance=0.0)
    loose = refresh_gate.python_func(evaluations["before"], evaluations["after"], gate, report, new_within=1.0,
                                     old_tolerance=1.0)
    assert loose.passed and not strict.passed and gate.metadata["passed"] is True
    no_parity = refresh_gate.python_func(evaluations["before"], evaluations["after"], gate, report, new_within=1.0,
                                         old_tolerance=1.0, parity_passed=False)
    assert not no_parity.passed and "failed the parity gate" in gate.metadata["reasons"][-1]
    assert "Refresh gate" in (tmp_path / "gate.md").read_text()
