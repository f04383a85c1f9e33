"""Reading the rows back from a real Feast repo (local provider, SQLite): same numbers as the table, a deadline,
a down store, counters, and a cache that never serves a row past its max age."""
from __future__ import annotations

import shutil
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from test_featurestore_rows import assert_same_answers, users_of

from materialized_at import AS_OF
from onevision.featurestore import reader as reader_module
from onevision.featurestore.live import FeastFeatures, FeastUserFeatures
from onevision.featurestore.materialize import materialize
from onevision.featurestore.reader import FeatureCounters, OnlineReader
from onevision.featurestore.repo import ONLINE_DB, FeatureRepoConfig
from onevision.featurestore.rows import population_row
from onevision.userfeatures import UserFeatureTable


def source(repo: Path, table: UserFeatureTable, **kw) -> FeastUserFeatures:
    return FeastFeatures(str(repo), **kw).open(table)


def test_online_features_equal_the_tables(tiny_repo: Path, tiny_table: UserFeatureTable) -> None:
    src = source(tiny_repo, tiny_table)
    assert_same_answers(src, tiny_table, users_of(tiny_table))
    assert src.counters.snapshot() == {"lookups": 4, "hits": 3, "unknown": 1, "timeouts": 0, "errors": 0}


def test_the_repo_records_its_online_store(tiny_repo: Path) -> None:
    config = FeatureRepoConfig.load(tiny_repo)
    assert config.online_store["type"] == "sqlite" and (tiny_repo / ONLINE_DB).exists()


def test_a_redis_store_is_accepted_by_config_and_needs_an_address(tmp_path: Path) -> None:
    config = FeatureRepoConfig(tmp_path, online_store={"type": "redis", "connection_string": "redis:6379"})
    config.write()
    assert FeatureRepoConfig.load(tmp_path).online_store == {"type": "redis", "connection_string": "redis:6379"}
    with pytest.raises(ValueError, match="connection_string"):
        FeatureRepoConfig(tmp_path, online_store={"type": "redis"})
    with pytest.raises(ValueError, match="online_store type"):
        FeatureRepoConfig(tmp_path, online_store={"type": "dynamodb"})


class SlowStore:
    def get_online_features(self, **kw):
        time.sleep(2.0)
        raise AssertionError("the deadline should have passed")


def test_a_read_past_its_deadline_serves_the_users_non_personalised(
        tiny_repo: Path, tiny_table: UserFeatureTable, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader_module, "open_store", lambda config: SlowStore())
    src = FeastUserFeatures(OnlineReader(FeatureRepoConfig.load(tiny_repo, timeout_ms=50)), population_row(tiny_table))
    ids = tiny_table.user_ids[:3]
    start = time.monotonic()
    assert not src.known(ids).any()
    assert time.monotonic() - start < 1.0
    assert src.counters.snapshot()["timeouts"] == 3
    # and the unknown users' numbers are the snapshot's non-personalised ones
    for got, want in zip(src.profile(np.full(3, -1)), tiny_table.profile(np.full(3, -1))):
        np.testing.assert_array_equal(got, want)


def test_a_down_store_is_counted_and_falls_back(tiny_repo: Path, tiny_table: UserFeatureTable, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(tiny_repo, repo)
    src = source(repo, tiny_table)
    assert src.known(tiny_table.user_ids[:1]).all()
    (repo / ONLINE_DB).unlink()
    shutil.rmtree(repo / "data")
    (repo / "registry.db").unlink()
    fresh = source(repo, tiny_table)  # a server started while the store is down
    assert not fresh.known(tiny_table.user_ids[:2]).any()
    assert fresh.counters.snapshot()["errors"] == 2
    np.testing.assert_array_equal(fresh.features(np.array([-1])), tiny_table.features(np.array([-1])))


def test_rows_are_reused_only_while_fresh(tiny_repo: Path, tiny_table: UserFeatureTable, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(tiny_repo, repo)
    now = [0.0]
    src = FeastUserFeatures(OnlineReader(FeatureRepoConfig.load(repo)), population_row(tiny_table), max_age_s=5.0,
                            clock=lambda: now[0])
    user = tiny_table.user_ids[[int(np.argmax(tiny_table.profile(tiny_table.user_ids)[2]))]]
    before = src.profile(user)[2]
    assert before > 0
    changed = UserFeatureTable(tiny_table.config, tiny_table.vocab, tiny_table.user_ids, tiny_table.age_band,
                               tiny_table.declared_category, tiny_table.price_sensitivity,
                               tiny_table.split_query_ids[:0], tiny_table.split_query_user_row[:0], tiny_table.log)
    materialize(changed, FeatureRepoConfig.load(repo), AS_OF + timedelta(days=1))
    assert src.profile(user)[2] == before  # within max_age: the cached row
    assert src.counters.snapshot()["lookups"] == 1
    now[0] = 5.0
    assert src.profile(user)[2] == 0.0 != before  # expired: re-read, the new row (no queries logged)


def test_a_slow_read_does_not_hold_up_other_requests(tiny_table: UserFeatureTable) -> None:
    import threading
    import time

    from onevision.featurestore.live import FeastUserFeatures
    from onevision.featurestore.reader import FeatureCounters, Fetched
    from onevision.featurestore.rows import population_row

    class SlowReader:  # a store that answers every read after 0.4 s
        counters = FeatureCounters()

        def fetch(self, users, extra):
            time.sleep(0.4)
            return Fetched({}, True)

    source = FeastUserFeatures(SlowReader(), population_row(tiny_table))
    users = tiny_table.user_ids[:2]
    threads = [threading.Thread(target=source.known, args=(users[i : i + 1],)) for i in range(2)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - start < 0.7  # both reads ran at once, not one after the other
