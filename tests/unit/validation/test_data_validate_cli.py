"""`onevision data validate DIR` end to end through the CLI."""
from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from onevision.cli import app


def test_validate_command_prints_summary_for_clean_world(tiny_world_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["data", "validate", str(tiny_world_dir), "--report-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "validation PASSED" in result.output and "impressions" in result.output
    assert (tmp_path / "validation_result.json").is_file()


def test_validate_command_exits_1_naming_the_failure(tiny_world_dir: Path, tmp_path: Path) -> None:
    world = Path(shutil.copytree(tiny_world_dir, tmp_path / "world", ignore=shutil.ignore_patterns("validation")))
    (world / "users.parquet").unlink()
    result = CliRunner().invoke(app, ["data", "validate", str(world)])
    assert result.exit_code == 1
    assert "users: expect_table_file_to_exist failed" in result.output
    assert (world / "validation" / "validation_result.json").is_file()


def test_validate_takes_relative_paths_as_in_docs(tiny_world_dir: Path, tmp_path: Path, monkeypatch) -> None:
    world = Path(shutil.copytree(tiny_world_dir, tmp_path / "world", ignore=shutil.ignore_patterns("validation")))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["data", "validate", "world", "--report-dir", "reports/validation"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "reports" / "validation" / "validation_result.json").is_file()
    assert (world / "world.json").is_file()
