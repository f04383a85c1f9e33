"""`onevision catalogue …`: help, a refresh from Parquet files, and errors that name what is wrong."""
from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pyarrow.parquet as pq
from typer.testing import CliRunner

from onevision.catalogue.cli import catalogue_app
from onevision.world import load_world

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[3]


def test_the_group_is_registered_as_an_entry_point() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["entry-points"]["onevision.commands"]["catalogue"] == \
        "onevision.catalogue.cli:catalogue_app"


def test_every_command_has_help() -> None:
    for command in ("refresh", "new-rows", "evaluate"):
        result = runner.invoke(catalogue_app, [command, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output, command


def _new_rows(new_item_models, out: Path) -> Path:
    result = runner.invoke(catalogue_app, ["new-rows", "--world", str(new_item_models.world), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_refresh_writes_a_new_bundle_version(new_item_models, tmp_path: Path) -> None:
    rows = _new_rows(new_item_models, tmp_path / "rows")
    out = tmp_path / "refreshed"
    result = runner.invoke(catalogue_app, [
        "refresh", "--bundle", str(new_item_models.cascade_bundle), "--items", str(rows / "items.parquet"),
        "--views", str(rows / "item_views.parquet"), "--out", str(out), "--version", "v2"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output[result.output.index("{"):])["version"] == "v2"
    added = [a["item_id"] for a in json.loads((out / "refresh_manifest.json").read_text())["added"]]
    assert added == sorted(pq.read_table(rows / "items.parquet").column("item_id").to_pylist())


def test_a_table_without_a_column_is_named_in_the_error(new_item_models, tmp_path: Path) -> None:
    rows = _new_rows(new_item_models, tmp_path / "rows")
    items = pq.read_table(rows / "items.parquet").drop(["brand"])
    pq.write_table(items, tmp_path / "items.parquet")
    result = runner.invoke(catalogue_app, [
        "refresh", "--bundle", str(new_item_models.cascade_bundle), "--items", str(tmp_path / "items.parquet"),
        "--views", str(rows / "item_views.parquet"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "lacks column(s) ['brand']" in result.output
    assert not (tmp_path / "out").exists()


def test_items_already_in_the_bundle_are_an_error(new_item_models, tmp_path: Path) -> None:
    world = load_world(new_item_models.world)
    old = tmp_path / "old"
    result = runner.invoke(catalogue_app, ["new-rows", "--world", str(new_item_models.world), "--out", str(old),
                                           "--after-day", "-1", "--by-day", str(world.for_training().listed_by)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(catalogue_app, [
        "refresh", "--bundle", str(new_item_models.generator_bundle), "--items", str(old / "items.parquet"),
        "--views", str(old / "item_views.parquet"), "--out", str(tmp_path / "out"), "--no-finetune"])
    assert result.exit_code == 1 and "already in the generator bundle" in result.output


def test_a_missing_table_is_an_error(new_item_models, tmp_path: Path) -> None:
    result = runner.invoke(catalogue_app, [
        "refresh", "--bundle", str(new_item_models.cascade_bundle), "--items", str(tmp_path / "nope.parquet"),
        "--views", str(tmp_path / "nope.parquet"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and "items table not found" in result.output


def test_evaluate_prints_recall_for_new_and_old_items(new_item_models, tmp_path: Path) -> None:
    result = runner.invoke(catalogue_app, ["evaluate", "--bundle", str(new_item_models.cascade_bundle),
                                           "--world", str(new_item_models.world), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    values = json.loads((tmp_path / "listing_recall.json").read_text())
    assert values["new"] == 0.0 and values["n_new"] > 0 and values["old"] > 0


def _refresh(new_item_models, rows: Path, out: Path, bundle: Path, *flags: str):
    return runner.invoke(catalogue_app, [
        "refresh", "--bundle", str(bundle), "--items", str(rows / "items.parquet"),
        "--views", str(rows / "item_views.parquet"), "--out", str(out), *flags])


def test_the_fine_tune_runs_with_the_default_config_and_the_flags_given(new_item_models, tmp_path: Path) -> None:
    import dataclasses

    from onevision.generator.finetune import FinetuneConfig

    rows = _new_rows(new_item_models, tmp_path / "rows")
    replay = ["--replay-views", str(Path(new_item_models.world) / "item_views.parquet")]
    result = _refresh(new_item_models, rows, tmp_path / "default", new_item_models.generator_bundle, *replay)
    assert result.exit_code == 0, result.output
    used = json.loads((tmp_path / "default" / "refresh_manifest.json").read_text())["finetune"]["config"]
    assert used == dataclasses.asdict(FinetuneConfig())  # every default, distillation's weight included
    result = _refresh(new_item_models, rows, tmp_path / "flags", new_item_models.generator_bundle, *replay,
                      "--epochs", "1", "--distill", "5", "--seed", "3", "--interpolation", "0.5")
    assert result.exit_code == 0, result.output
    used = json.loads((tmp_path / "flags" / "refresh_manifest.json").read_text())["finetune"]["config"]
    assert (used["epochs"], used["distill"], used["seed"], used["weight_interpolation"]) == (1, 5.0, 3, 0.5)


def test_the_cascade_prior_scale_scales_the_new_items_clicks(new_item_models, tmp_path: Path) -> None:
    rows = _new_rows(new_item_models, tmp_path / "rows")
    priors = {}
    for scale in ("1", "0.5"):
        out = tmp_path / f"x{scale}"
        result = _refresh(new_item_models, rows, out, new_item_models.cascade_bundle, "--cold-start-scale", scale)
        assert result.exit_code == 0, result.output
        priors[scale] = [a["prior_clicks"] for a in json.loads((out / "refresh_manifest.json").read_text())["added"]]
    assert any(p > 0 for p in priors["1"])
    assert max(abs(half - full / 2) for half, full in zip(priors["0.5"], priors["1"])) <= 1e-3  # 3 decimals


def test_a_bad_cold_start_setting_is_a_usage_error(new_item_models, tmp_path: Path) -> None:
    rows = _new_rows(new_item_models, tmp_path / "rows")
    for flags, message in ((("--cold-start-scale", "-1"), "cold_start_scale must be >= 0"),
                           (("--cold-start-clicks", "median"), "cold_start_clicks must be one of")):
        result = _refresh(new_item_models, rows, tmp_path / "out", new_item_models.cascade_bundle, *flags)
        assert result.exit_code == 2 and message in result.output, result.output
        assert not (tmp_path / "out").exists()
