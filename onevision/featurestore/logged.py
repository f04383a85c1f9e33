"""Reading what production logged: the request log directory that the production-loop join
(`monitoring.events.join`) and the A/B replay (`monitoring.replay`) write, as a `UserFeatureTable`."""
from __future__ import annotations

import io
from pathlib import Path

from onevision.userfeatures import UserFeatureConfig, UserFeatureTable

# The log's layout: monitoring.replay.REQUESTS_FILE / IMPRESSIONS_FILE (the core cannot import monitoring; a test
# checks they agree).
REQUESTS_FILE = "requests.parquet"
IMPRESSIONS_FILE = "impressions.parquet"


def read_logged(log_uri: str | Path) -> tuple["pd.DataFrame", "pd.DataFrame"]:  # noqa: F821
    """(requests, impressions) of a log directory or s3:// prefix; FileNotFoundError naming a missing file."""
    import pandas as pd

    from onevision.storage import open_store

    store = open_store(str(log_uri))
    frames = []
    for name in (REQUESTS_FILE, IMPRESSIONS_FILE):
        if not store.exists(name):
            raise FileNotFoundError(f"no logged {name.split('.')[0]} at {store.uri_of(name)}; expected {REQUESTS_FILE} "
                                    f"and {IMPRESSIONS_FILE} (a replay or `onevision events join` output)")
        frames.append(pd.read_parquet(io.BytesIO(store.get_bytes(name))))
    return frames[0], frames[1]


def table_from_log(log_uri: str | Path | None, world_dir: str | Path,
                   config: UserFeatureConfig = UserFeatureConfig()) -> UserFeatureTable:
    """The user features of a logged period (catalogue items and users from the world); with no log, those of
    the world's own training split (what the bundle's snapshot holds)."""
    from onevision.world import load_world

    world = load_world(world_dir)
    if log_uri is None:
        return UserFeatureTable.fit(world, "train", config)
    requests, impressions = read_logged(log_uri)
    return UserFeatureTable.from_impressions(requests, impressions, world.items, world.users, config)
