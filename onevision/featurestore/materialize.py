"""Materialise a `UserFeatureTable` into the feature store: write the online rows to the repo's Parquet with one
event timestamp, `apply` the definitions and run Feast's own `materialize` over that instant.

Feast's `materialize` (offline Parquet -> online store) takes ~0.15 s for 300 users on the local provider, a
`write_to_online_store` of the same frame ~0.03 s: both are negligible next to computing the rows, so the
materialiser keeps Feast's path, whose Parquet is also the offline record of what was served when.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from onevision.featurestore.repo import EVENT_TS, ROWS_PARQUET, VIEW, FeatureRepoConfig, definitions, open_store
from onevision.featurestore.rows import DEFAULT_HISTORY, online_rows
from onevision.userfeatures import UserFeatureTable


@dataclass(frozen=True)
class MaterializeResult:
    repo_dir: Path
    parquet: Path
    users: int  # rows written, the population row not counted
    as_of: datetime


def materialize(table: UserFeatureTable, config: FeatureRepoConfig, as_of: datetime | None = None,
                history_len: int = DEFAULT_HISTORY) -> MaterializeResult:
    """Write `table`'s online rows stamped `as_of` (default: now, UTC) and load them into the online store;
    earlier rows of the same users are replaced."""
    as_of = (as_of or datetime.now(timezone.utc)).astimezone(timezone.utc)
    frame = online_rows(table, history_len)
    frame[EVENT_TS] = as_of
    config.write()
    parquet = config.repo_dir / ROWS_PARQUET
    parquet.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(parquet, index=False)
    store = open_store(config)
    store.apply(list(definitions(config)))
    store.materialize(as_of - timedelta(seconds=1), as_of + timedelta(seconds=1), feature_views=[VIEW])
    return MaterializeResult(config.repo_dir, parquet, len(frame) - 1, as_of)
