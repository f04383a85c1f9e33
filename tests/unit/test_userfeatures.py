from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from onevision.userfeatures import UserFeatureTable, exposure_weight
from onevision.world import World, load_world
from onevision.world import schema
from onevision.world.io import write_table


@pytest.fixture(scope="module")
def world(tiny_world_dir: Path) -> World:
    return load_world(tiny_world_dir)


@pytest.fixture(scope="module")
def table(world: World) -> UserFeatureTable:
    return UserFeatureTable.fit(world, "train")


def _copy_with_impressions(src: Path, dst: Path, change) -> World:
    """A copy of the world whose impressions (and queries) went through `change(queries, impressions)`."""
    shutil.copytree(src, dst)
    w = load_world(dst)
    queries, impressions = change(w.queries.copy(), w.impressions.copy())
    write_table(schema.QUERIES, {c: queries[c].tolist() for c in schema.QUERIES.column_names},
                dst / schema.QUERIES.filename)
    write_table(schema.IMPRESSIONS, {c: impressions[c].to_numpy() for c in schema.IMPRESSIONS.column_names},
                dst / schema.IMPRESSIONS.filename)
    return load_world(dst)


def _busiest_user(world: World) -> int:
    return int(world.queries_of("train")["user_id"].value_counts().idxmax())


def test_features_have_one_row_per_user_and_a_known_column(table: UserFeatureTable, world: World) -> None:
    ids = world.users["user_id"].to_numpy()[:5]
    f = table.features(ids)
    assert f.shape == (5, table.n_features) and f.dtype == np.float32
    assert len(table.feature_names) == table.n_features and table.feature_names[-1] == "known"
    assert np.all(f[:, -1] == 1.0)


def test_unknown_users_get_the_population_average(table: UserFeatureTable, world: World) -> None:
    known_ids = world.users["user_id"].to_numpy()
    f = table.features(np.array([-1, 10_000]))
    assert np.array_equal(table.known(np.array([-1, 10_000, known_ids[0]])), [False, False, True])
    expected = table.features(known_ids).mean(0)
    np.testing.assert_allclose(f[0, :-1], expected[:-1], rtol=1e-5)
    assert np.array_equal(f[0], f[1]) and f[0, -1] == 0.0
    assert np.all(table.history(np.array([-1, 10_000])) == -1)
    assert np.allclose(table.affinity("brand", np.array([-1]), np.array([[0, 1, 2]])), 0.0, atol=1e-6)


def test_history_lists_the_latest_clicks_first(table: UserFeatureTable, world: World) -> None:
    user = _busiest_user(world)
    q = world.queries_of("train")
    imp = world.impressions.merge(q[["query_id", "user_id", "ts"]], on="query_id")
    clicks = imp[(imp["user_id"] == user) & imp["clicked"]].sort_values(["ts", "query_id", "position"], ascending=False)
    expected = clicks["item_id"].to_numpy()[:4]
    got = table.history(np.array([user]), n=4)[0]
    assert np.array_equal(got[: len(expected)], expected) and np.all(got[len(expected):] == -1)


def test_most_clicked_brand_has_the_highest_affinity(table: UserFeatureTable, world: World) -> None:
    user = _busiest_user(world)
    q = world.queries_of("train")
    imp = world.impressions.merge(q[["query_id", "user_id"]], on="query_id")
    imp = imp.merge(world.items[["item_id", "brand"]], on="item_id")
    top_brand = imp[(imp["user_id"] == user) & imp["clicked"]]["brand"].value_counts().idxmax()
    brands = np.arange(table.vocab["brand"])[None, :]
    lift = table.affinity("brand", np.array([user]), brands)[0]
    assert lift.argmax() == top_brand and lift[top_brand] > 0


def test_leaving_a_query_out_equals_fitting_without_it(table: UserFeatureTable, world: World, tiny_world_dir: Path,
                                                       tmp_path: Path) -> None:
    user = _busiest_user(world)
    q = world.queries_of("train")
    imp = world.impressions
    clicked_queries = imp[imp["clicked"] & imp["query_id"].isin(q[q["user_id"] == user]["query_id"])]["query_id"]
    drop = int(clicked_queries.iloc[len(clicked_queries) // 2])

    def without(queries: pd.DataFrame, impressions: pd.DataFrame):
        return queries[queries["query_id"] != drop], impressions[impressions["query_id"] != drop]

    smaller = UserFeatureTable.fit(_copy_with_impressions(tiny_world_dir, tmp_path / "w", without), "train")
    ids, ex = np.array([user]), np.array([drop])
    assert not np.allclose(table.features(ids), smaller.features(ids), rtol=1e-3)
    np.testing.assert_allclose(table.features(ids, exclude_query_ids=ex), smaller.features(ids), rtol=1e-5, atol=1e-7)
    assert np.array_equal(table.history(ids, exclude_query_ids=ex), smaller.history(ids))
    brands = np.arange(table.vocab["brand"])[None, :]
    np.testing.assert_allclose(table.affinity("brand", ids, brands, exclude_query_ids=ex),
                               smaller.affinity("brand", ids, brands), rtol=1e-5, atol=1e-6)
    shown = table.affinity("brand", ids, brands, signal="exposure", exclude_query_ids=ex)
    assert not np.allclose(shown, table.affinity("brand", ids, brands, signal="exposure"), atol=1e-6)
    np.testing.assert_allclose(shown, smaller.affinity("brand", ids, brands, signal="exposure"), rtol=1e-5, atol=1e-6)


def test_test_split_impressions_do_not_change_the_table(table: UserFeatureTable, world: World, tiny_world_dir: Path,
                                                         tmp_path: Path) -> None:
    test_ids = set(world.queries_of("test")["query_id"])

    def flip(queries: pd.DataFrame, impressions: pd.DataFrame):
        in_test = impressions["query_id"].isin(test_ids)
        impressions.loc[in_test, "clicked"] = ~impressions.loc[in_test, "clicked"]
        impressions.loc[in_test, "ordered"] = impressions.loc[in_test, "clicked"]
        return queries, impressions

    changed = UserFeatureTable.fit(_copy_with_impressions(tiny_world_dir, tmp_path / "w", flip), "train")
    ids = np.concatenate([world.users["user_id"].to_numpy(), [-1]])
    assert np.array_equal(table.features(ids), changed.features(ids))
    assert np.array_equal(table.history(ids), changed.history(ids))


def test_save_then_load_gives_identical_outputs(table: UserFeatureTable, world: World, tmp_path: Path) -> None:
    loaded = UserFeatureTable.load(table.save(tmp_path / "users"))
    ids = np.concatenate([world.users["user_id"].to_numpy(), [-1, 9999]])
    cats = np.tile(np.arange(table.vocab["category"]), (len(ids), 1))
    assert np.array_equal(table.features(ids), loaded.features(ids))
    assert np.array_equal(table.history(ids), loaded.history(ids))
    assert np.array_equal(table.affinity("category", ids, cats, signal="order"),
                          loaded.affinity("category", ids, cats, signal="order"))
    assert np.array_equal(table.affinity("category", ids, cats, signal="exposure"),
                          loaded.affinity("category", ids, cats, signal="exposure"))


def test_fitting_twice_gives_the_same_table(table: UserFeatureTable, world: World) -> None:
    again = UserFeatureTable.fit(world, "train")
    ids = world.users["user_id"].to_numpy()
    assert np.array_equal(table.features(ids), again.features(ids))


def test_load_names_the_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="user_features"):
        UserFeatureTable.load(tmp_path)


def test_exposure_affinity_is_the_log_lift_of_the_discounted_shown_share(table: UserFeatureTable, world: World) -> None:
    q = world.queries_of("train")
    imp = world.impressions.merge(q[["query_id", "user_id"]], on="query_id")
    imp = imp.merge(world.items[["item_id", "brand"]], on="item_id")
    imp["w"] = exposure_weight(imp["position"].to_numpy())
    n = table.vocab["brand"]
    population = imp.groupby("brand")["w"].sum().reindex(range(n), fill_value=0.0).to_numpy()
    prior = (population + 1.0) / (population.sum() + n)
    user = _busiest_user(world)
    mine = imp[imp["user_id"] == user].groupby("brand")["w"].sum().reindex(range(n), fill_value=0.0).to_numpy()
    a = table.config.smoothing
    expected = np.log((mine + a * prior) / (mine.sum() + a) / prior)
    got = table.affinity("brand", np.array([user]), np.arange(n)[None, :], signal="exposure")[0]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert got.argmax() == mine.argmax()


def test_exposure_counts_what_was_shown_not_what_was_clicked(table: UserFeatureTable, world: World,
                                                             tiny_world_dir: Path, tmp_path: Path) -> None:
    train_ids = set(world.queries_of("train")["query_id"])

    def flip(queries: pd.DataFrame, impressions: pd.DataFrame):
        in_train = impressions["query_id"].isin(train_ids)
        impressions.loc[in_train, "clicked"] = ~impressions.loc[in_train, "clicked"]
        impressions.loc[in_train, "ordered"] = False
        return queries, impressions

    changed = UserFeatureTable.fit(_copy_with_impressions(tiny_world_dir, tmp_path / "w", flip), "train")
    ids = world.users["user_id"].to_numpy()
    brands = np.tile(np.arange(table.vocab["brand"]), (len(ids), 1))
    assert np.array_equal(table.affinity("brand", ids, brands, signal="exposure"),
                          changed.affinity("brand", ids, brands, signal="exposure"))
    assert not np.allclose(table.affinity("brand", ids, brands), changed.affinity("brand", ids, brands))
