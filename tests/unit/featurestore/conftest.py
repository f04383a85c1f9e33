from __future__ import annotations

from pathlib import Path

import pytest
from materialized_at import AS_OF

from onevision.userfeatures import UserFeatureTable



@pytest.fixture(scope="session")
def tiny_table(tiny_world_dir: Path) -> UserFeatureTable:
    from onevision.world import load_world

    return UserFeatureTable.fit(load_world(tiny_world_dir))


@pytest.fixture(scope="session")
def tiny_repo(tiny_table: UserFeatureTable, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real Feast repo (local provider, SQLite) holding the tiny table's rows. Read-only: copy it to break it."""
    from onevision.featurestore.materialize import materialize
    from onevision.featurestore.repo import FeatureRepoConfig

    repo = tmp_path_factory.mktemp("feature_repo")
    materialize(tiny_table, FeatureRepoConfig(repo), AS_OF)
    return repo
