from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from component_artifacts import artifact, metrics
from kfp import dsl

from components.validate import validate_data
from onevision.validation.report import RESULT_FILE, DataValidationError


def _outputs(tmp_path: Path) -> dict:
    return {"report": artifact(dsl.Artifact, tmp_path / "report"),
            "summary": artifact(dsl.Markdown, tmp_path / "summary.md"), "metrics": metrics(tmp_path / "metrics")}


def test_a_valid_world_passes_with_counts_per_table(world: dsl.Dataset, tmp_path: Path) -> None:
    outputs = _outputs(tmp_path)
    validate_data.python_func(world, **outputs)
    assert json.loads((tmp_path / "report" / RESULT_FILE).read_text())["success"] is True
    assert (tmp_path / "summary.md").read_text().startswith("# Data validation PASSED")
    scalars = outputs["metrics"].metadata
    assert scalars["success"] == 1.0 and scalars["failed_expectations"] == 0.0
    assert scalars["items.rows"] == len(pd.read_parquet(Path(world.path) / "items.parquet"))


def test_an_invalid_world_fails_and_still_reports_why(tiny_world_dir: Path, tmp_path: Path) -> None:
    broken = shutil.copytree(tiny_world_dir, tmp_path / "world")
    items = pd.read_parquet(broken / "items.parquet")
    items.loc[1, "item_id"] = items.loc[0, "item_id"]  # a duplicate primary key
    items.to_parquet(broken / "items.parquet", index=False)
    outputs = _outputs(tmp_path)
    with pytest.raises(DataValidationError, match="items.item_id: expect_column_values_to_be_unique"):
        validate_data.python_func(artifact(dsl.Dataset, broken), **outputs)
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith("# Data validation FAILED")
    assert "items.item_id: expect_column_values_to_be_unique" in summary
    assert outputs["metrics"].metadata["success"] == 0.0
