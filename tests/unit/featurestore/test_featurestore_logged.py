"""Features from what production logged: the same computation as the world's split, read from a log directory."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from onevision.featurestore.cli import features_app
from onevision.featurestore.logged import IMPRESSIONS_FILE, REQUESTS_FILE, table_from_log
from onevision.featurestore.repo import STORE_YAML, FeatureRepoConfig
from onevision.userfeatures import UserFeatureTable
from onevision.world import load_world

ROOT = Path(__file__).resolve().parents[3]


def invoke(*args: str):
    """`onevision features ...` as the root command mounts the group."""
    import typer

    root = typer.Typer()
    root.add_typer(features_app, name="features")
    return CliRunner().invoke(root, ["features", *args])


def write_train_split_as_log(world_dir: Path, out: Path) -> Path:
    """The world's training split in the replay / join layout (string request ids, as the join writes)."""
    world = load_world(world_dir)
    q = world.queries_of("train")
    imp = world.impressions[world.impressions["query_id"].isin(q["query_id"])]
    out.mkdir(parents=True)
    q.assign(request_id=q["query_id"].map(lambda i: f"r{i:08d}"))[["request_id", "user_id", "ts"]].to_parquet(out / REQUESTS_FILE)
    imp.assign(request_id=imp["query_id"].map(lambda i: f"r{i:08d}"), arm="control")[
        ["request_id", "arm", "position", "item_id", "clicked", "ordered"]].to_parquet(out / IMPRESSIONS_FILE)
    return out


def test_a_logged_period_gives_the_same_features_as_the_split(tiny_world_dir: Path, tmp_path: Path) -> None:
    log = write_train_split_as_log(tiny_world_dir, tmp_path / "log")
    logged = table_from_log(log, tiny_world_dir)
    fitted = UserFeatureTable.fit(load_world(tiny_world_dir))
    ids = fitted.user_ids
    np.testing.assert_array_equal(logged.features(ids), fitted.features(ids))
    np.testing.assert_array_equal(logged.history(ids), fitted.history(ids))


def test_a_log_without_a_column_is_named(tiny_world_dir: Path) -> None:
    world = load_world(tiny_world_dir)
    q = world.queries_of("train").rename(columns={"query_id": "request_id"})
    with pytest.raises(ValueError, match=r"impressions lack columns \['request_id'\]"):
        UserFeatureTable.from_impressions(q, world.impressions, world.items, world.users)


def test_the_log_layout_is_the_replays() -> None:
    from monitoring.replay import IMPRESSIONS_FILE as REPLAY_IMPRESSIONS, REQUESTS_FILE as REPLAY_REQUESTS

    assert (REQUESTS_FILE, IMPRESSIONS_FILE) == (REPLAY_REQUESTS, REPLAY_IMPRESSIONS)


def test_the_command_group_is_registered() -> None:
    import tomllib

    entry_points = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["onevision.commands"]
    assert entry_points["features"] == "onevision.featurestore.cli:features_app"


def test_materialize_help_and_a_missing_log_is_named(tiny_world_dir: Path, tmp_path: Path) -> None:
    result = invoke("materialize", "--help")
    assert result.exit_code == 0 and "--log" in result.output
    result = invoke("materialize", "--world", str(tiny_world_dir), "--log", str(tmp_path / "nope"),
                    "--repo", str(tmp_path / "repo"))
    assert result.exit_code == 1 and REQUESTS_FILE in result.output


def test_materialize_writes_a_repo_servers_can_read(tiny_world_dir: Path, tmp_path: Path) -> None:
    log = write_train_split_as_log(tiny_world_dir, tmp_path / "log")
    result = invoke("materialize", "--world", str(tiny_world_dir), "--log", str(log), "--repo", str(tmp_path / "repo"),
                    "--as-of", "2025-01-01T00:00:00")
    assert result.exit_code == 0, result.output
    assert "24 users materialised" in result.output and (tmp_path / "repo" / STORE_YAML).exists()
    assert FeatureRepoConfig.load(tmp_path / "repo").online_store["type"] == "sqlite"
