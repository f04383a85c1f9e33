from __future__ import annotations

from pathlib import Path

import numpy as np
from component_artifacts import metrics

from components.features import materialize_features
from onevision.featurestore.live import FeastFeatures
from onevision.userfeatures import UserFeatureTable
from onevision.world import load_world
from tests.unit.featurestore.test_featurestore_logged import write_train_split_as_log


def test_the_joined_log_is_materialised_into_the_repo(tiny_world_dir: Path, tmp_path: Path) -> None:
    log = write_train_split_as_log(tiny_world_dir, tmp_path / "log")
    scalars = metrics(tmp_path / "metrics")
    materialize_features.python_func(str(log), str(tiny_world_dir), str(tmp_path / "repo"), scalars)
    assert scalars.metadata["users"] == 24.0
    table = UserFeatureTable.fit(load_world(tiny_world_dir))
    source = FeastFeatures(str(tmp_path / "repo")).open(table)
    np.testing.assert_array_equal(source.features(table.user_ids), table.features(table.user_ids))
