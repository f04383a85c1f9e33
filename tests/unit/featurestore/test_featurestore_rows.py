"""The online rows answer every serving call with the table's own numbers."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from onevision.featurestore.rows import OnlineUserFeatures, online_rows
from onevision.featurestore.source import UserFeatureSource
from onevision.userfeatures import ATTRIBUTES, SIGNALS, UserFeatureTable


def users_of(table: UserFeatureTable) -> np.ndarray:
    return np.array([table.user_ids[0], table.user_ids[-1], table.user_ids[3], 10**6, -1], np.int64)


def assert_same_answers(source: UserFeatureSource, table: UserFeatureTable, ids: np.ndarray) -> None:
    np.testing.assert_array_equal(source.known(ids), table.known(ids))
    rng = np.random.default_rng(0)
    for signal in SIGNALS:
        for attr in ATTRIBUTES:
            values = rng.integers(0, table.vocab[attr], (len(ids), 7))
            got, want = source.affinity(attr, ids, values, signal=signal), table.affinity(attr, ids, values, signal=signal)
            assert got.dtype == want.dtype and np.array_equal(got, want), (signal, attr)
    for got, want in zip(source.profile(ids), table.profile(ids)):
        assert got.dtype == want.dtype and np.array_equal(got, want)
    for n in (1, table.config.history_len):
        np.testing.assert_array_equal(source.history(ids, n), table.history(ids, n))
    got, want = source.features(ids), table.features(ids)
    assert got.dtype == want.dtype and np.array_equal(got, want)


def test_the_lookup_answers_exactly_what_the_table_answers(tiny_table: UserFeatureTable) -> None:
    lookup = OnlineUserFeatures.from_frame(online_rows(tiny_table))
    assert isinstance(lookup, UserFeatureSource) and isinstance(tiny_table, UserFeatureSource)
    assert_same_answers(lookup, tiny_table, users_of(tiny_table))


def test_the_lookup_has_no_leave_one_out(tiny_table: UserFeatureTable) -> None:
    lookup = OnlineUserFeatures.from_frame(online_rows(tiny_table))
    with pytest.raises(ValueError, match="exclude_query_ids"):
        lookup.profile(tiny_table.user_ids[:1], exclude_query_ids=np.array([0]))


def test_a_longer_history_than_materialised_is_refused(tiny_table: UserFeatureTable) -> None:
    lookup = OnlineUserFeatures.from_frame(online_rows(tiny_table, history_len=tiny_table.config.history_len))
    with pytest.raises(ValueError, match="materialise with a longer history"):
        lookup.history(tiny_table.user_ids[:1], tiny_table.config.history_len + 1)


def test_importing_the_package_does_not_import_feast() -> None:
    code = "import sys, onevision.featurestore, onevision.featurestore.live, onevision.featurestore.cli; " \
           "print('feast' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
