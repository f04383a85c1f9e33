from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from onevision.cli import app
from onevision.evaluation.result import STABLE_KEYS

runner = CliRunner()


def _metrics(path: Path, model: str, scale: float) -> Path:
    values = {k: 0.5 * scale for k in STABLE_KEYS if k not in ("model", "n_queries")}
    path.mkdir(parents=True)
    (path / "metrics.json").write_text(json.dumps({"model": model, "n_queries": 100, **values}))
    return path


def test_help_lists_every_command_group() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for group in ("world", "data", "train", "evaluate", "canary"):
        assert group in result.output


@pytest.mark.parametrize("command", [["world", "generate"], ["data", "validate"], ["train", "encoder"], ["train", "vrq"],
                                     ["train", "cascade"], ["train", "generator"], ["train", "bundle"],
                                     ["evaluate", "model"], ["evaluate", "parity"]])
def test_every_subcommand_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_help_does_not_import_heavy_libraries() -> None:
    code = ("import sys; from onevision.cli import app; "
            "heavy = [m for m in ('torch', 'great_expectations', 'evidently', 'kfp', 'kserve') if m in sys.modules]; "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_parity_gate_passes_within_epsilon(tmp_path: Path) -> None:
    gen = _metrics(tmp_path / "gen", "generator", 0.99)
    cas = _metrics(tmp_path / "cas", "cascade", 1.0)
    result = runner.invoke(app, ["evaluate", "parity", "--generator", str(gen), "--cascade", str(cas),
                                 "--out", str(tmp_path / "parity"), "--epsilon", "0.02"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "parity" / "parity.json").read_text())["passed"] is True


def test_failing_parity_gate_exits_non_zero_with_reasons(tmp_path: Path) -> None:
    gen = _metrics(tmp_path / "gen", "generator", 0.9)
    cas = _metrics(tmp_path / "cas", "cascade", 1.0)
    result = runner.invoke(app, ["evaluate", "parity", "--generator", str(gen), "--cascade", str(cas),
                                 "--out", str(tmp_path / "parity"), "--epsilon", "0.02"])
    assert result.exit_code == 1
    assert "recall@10" in result.output and "parity gate failed" in result.output
    report = json.loads((tmp_path / "parity" / "parity.json").read_text())
    assert report["passed"] is False and len(report["reasons"]) == 4


def test_missing_metrics_file_is_named(tmp_path: Path) -> None:
    cas = _metrics(tmp_path / "cas", "cascade", 1.0)
    result = runner.invoke(app, ["evaluate", "parity", "--generator", str(tmp_path / "nope"), "--cascade", str(cas),
                                 "--out", str(tmp_path / "parity")])
    assert result.exit_code == 2 and "nope" in result.output


def test_world_generate_rejects_bad_discrepancy(tmp_path: Path) -> None:
    result = runner.invoke(app, ["world", "generate", "--out", str(tmp_path), "--discrepancy", "extreme"])
    assert result.exit_code == 2 and "discrepancy" in result.output
