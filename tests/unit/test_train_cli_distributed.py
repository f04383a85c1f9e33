"""`onevision train … --nproc N` (torchrun) and `--trainer kubeflow [--dry-run]` (a TrainJob) at the CLI."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from kubeflow_trainer_api import models
from typer.testing import CliRunner

from onevision.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
S3 = ["--world", "s3://runs/world", "--encoder", "s3://runs/encoder", "--vrq", "s3://runs/vrq", "--out", "s3://runs/g2",
      "--init", "s3://runs/g1"]


def test_dry_run_prints_the_trainjob_with_the_same_command_on_every_node() -> None:
    result = runner.invoke(app, ["train", "generator", *S3, "--stage", "2", "--epochs", "3", "--no-affinity-scorer",
                                 "--trainer", "kubeflow", "--nproc", "4", "--nodes", "2", "--gpu", "4", "--dry-run"])
    assert result.exit_code == 0, result.output
    body = yaml.safe_load(result.output)
    assert models.TrainerV1alpha1TrainJob.from_dict(body).to_dict() == body
    trainer = body["spec"]["trainer"]
    assert trainer["numNodes"] == 2 and trainer["resourcesPerNode"]["limits"]["nvidia.com/gpu"] == "4"
    command = trainer["command"]
    assert command[command.index("--nproc-per-node") + 1] == "4"
    args = command[command.index("onevision.torchrun") + 1:]
    assert args[:2] == ["train", "generator"] and "--trainer" not in args and "--dry-run" not in args
    for flag, value in (("--world", "s3://runs/world"), ("--init", "s3://runs/g1"), ("--stage", "2"), ("--epochs", "3")):
        assert args[args.index(flag) + 1] == value
    assert "--no-affinity-scorer" in args


def test_the_encoder_has_the_same_trainjob_path() -> None:
    result = runner.invoke(app, ["train", "encoder", "--world", "s3://runs/world", "--out", "s3://runs/encoder",
                                 "--trainer", "kubeflow", "--dry-run"])
    assert result.exit_code == 0, result.output
    command = yaml.safe_load(result.output)["spec"]["trainer"]["command"]
    assert command[command.index("onevision.torchrun") + 1:][:4] == ["train", "encoder", "--world", "s3://runs/world"]


def test_a_trainjob_needs_its_artifacts_in_s3(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "encoder", "--world", str(tmp_path), "--out", "s3://runs/encoder",
                                 "--trainer", "kubeflow", "--dry-run"])
    assert result.exit_code == 2 and "needs the world in the S3 store" in result.output


def test_dry_run_and_unknown_trainers_are_usage_errors(tmp_path: Path) -> None:
    local = ["train", "encoder", "--world", str(tmp_path), "--out", str(tmp_path / "enc")]
    dry = runner.invoke(app, [*local, "--dry-run"])
    assert dry.exit_code == 2 and "needs --trainer kubeflow" in dry.output
    other = runner.invoke(app, [*local, "--trainer", "slurm"])
    assert other.exit_code == 2 and "--trainer must be one of local|kubeflow" in other.output


def test_a_failing_rank_is_reported_with_its_rank_and_exit_code(tmp_path: Path) -> None:
    """Stage 2 without --init fails in every rank (exit code 2); the launcher names the rank, code and error."""
    (tmp_path / "placeholder").write_text("")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-m", "onevision.cli", "train", "generator", "--world", str(tmp_path),
                          "--encoder", str(tmp_path), "--vrq", str(tmp_path), "--out", str(tmp_path / "g2"),
                          "--stage", "2", "--nproc", "2"], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 2, run.stderr[-2000:]
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("error: 2-rank run failed: rank ")
    assert last.endswith("failed with exit code 2: generator stage 2 needs init_dir: the stage-1 model directory")


def test_a_config_json_is_checked_before_anything_is_launched() -> None:
    result = runner.invoke(app, ["train", "generator", *S3, "--stage", "2", "--trainer", "kubeflow", "--dry-run",
                                 "--config", '{"d_model": 16, "bogus": 1}'])
    assert result.exit_code == 2 and "unknown --config key(s) ['bogus']" in result.output
    good = runner.invoke(app, ["train", "generator", *S3, "--stage", "2", "--trainer", "kubeflow", "--dry-run",
                               "--config", '{"d_model": 16}'])
    command = yaml.safe_load(good.output)["spec"]["trainer"]["command"]
    assert command[command.index("--config") + 1] == '{"d_model": 16}'
