"""A user whose tastes changed after training: once the features are re-materialised from what was logged, the
same request returns a different slate from the same bundle (no new archive), while the snapshot path still
returns the old one. A down store serves the non-personalised slate, counted, without an error."""
from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from materialized_at import AS_OF

from onevision.featurestore import reader as reader_module
from onevision.featurestore.live import FeastFeatures
from onevision.featurestore.materialize import materialize
from onevision.featurestore.repo import FeatureRepoConfig
from onevision.service.search import SearchService
from onevision.userfeatures import UserFeatureTable
from onevision.world import load_world

K = 8


def request(world, user: int) -> list[dict]:
    image = world.queries_of("test")["image"].iloc[0]
    return [{"image_b64": base64.b64encode(image).decode(), "user_id": int(user), "top_k": K}]


def slate(service: SearchService, world, user: int) -> tuple[list[int], bool]:
    (resp,) = service.predict(request(world, user))
    return [i["item_id"] for i in resp["items"]], resp["personalized"]


def changed_tastes(world, user: int, brand: int, band: int, n: int = 60) -> UserFeatureTable:
    """The world's training log plus `n` later requests where `user` clicks and orders items of one brand and
    price band only."""
    q = world.queries_of("train")
    imp = world.impressions[world.impressions["query_id"].isin(q["query_id"])]
    liked = world.items[(world.items["brand"] == brand) & (world.items["price_band"] == band)]["item_id"].to_numpy()
    if len(liked) == 0:
        liked = world.items[world.items["brand"] == brand]["item_id"].to_numpy()
    start = int(q["query_id"].max()) + 1
    ids = np.arange(start, start + n)
    requests = pd.concat([q[["query_id", "user_id", "ts"]].rename(columns={"query_id": "request_id"}),
                          pd.DataFrame({"request_id": ids, "user_id": user, "ts": q["ts"].max() + 1 + np.arange(n)})])
    slots = pd.DataFrame({"request_id": np.repeat(ids, 2), "position": np.tile([0, 1], n),
                          "item_id": np.resize(liked, 2 * n), "clicked": True, "ordered": True})
    impressions = pd.concat([imp.rename(columns={"query_id": "request_id"})[list(slots.columns)], slots])
    return UserFeatureTable.from_impressions(requests, impressions, world.items, world.users)


@pytest.mark.parametrize("kind", ["cascade", "generator"])
def test_re_materialised_features_change_the_slate_without_a_new_archive(tiny_models, tmp_path: Path, kind: str) -> None:
    world = load_world(tiny_models.world)
    bundle = tiny_models.cascade_bundle if kind == "cascade" else tiny_models.generator_bundle
    snapshot = UserFeatureTable.load(bundle / ("cascade/rank/users" if kind == "cascade" else "userfeatures"))
    repo = FeatureRepoConfig(tmp_path / "repo")
    materialize(snapshot, repo, AS_OF)
    served = SearchService(bundle, features=FeastFeatures(str(repo.repo_dir), max_age_s=0.0))
    frozen = SearchService(bundle)
    users = snapshot.user_ids[np.argsort(-snapshot.profile(snapshot.user_ids)[2], kind="stable")][:6]
    changed = None
    for user in users:
        before, personalised = slate(served, world, user)
        assert personalised and before == slate(frozen, world, user)[0]
        # the user now engages with the brand x price band they had the least affinity for
        brands = snapshot.affinity("brand", [user], np.arange(snapshot.vocab["brand"])[None])[0]
        bands = snapshot.affinity("price_band", [user], np.arange(snapshot.vocab["price_band"])[None])[0]
        materialize(changed_tastes(world, int(user), int(np.argmin(brands)), int(np.argmin(bands))), repo,
                    AS_OF + timedelta(days=1))
        after = slate(served, world, user)[0]
        assert slate(frozen, world, user)[0] == before  # the snapshot is what it was
        if after != before:
            changed = (user, before, after)
            break
        materialize(snapshot, repo, AS_OF + timedelta(days=2))
    assert changed is not None, "no user's slate followed their new tastes"
    assert served.feature_counts()["hits"] > 0


class DownStore:
    def get_online_features(self, **kw):
        raise ConnectionError("Error 111 connecting to redis:6379. Connection refused.")


def test_a_down_store_serves_the_non_personalised_slate(tiny_models, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    world = load_world(tiny_models.world)
    bundle = tiny_models.cascade_bundle
    snapshot = UserFeatureTable.load(bundle / "cascade/rank/users")
    repo = FeatureRepoConfig(tmp_path / "repo", online_store={"type": "redis", "connection_string": "redis:6379"})
    repo.write()
    monkeypatch.setattr(reader_module, "open_store", lambda config: DownStore())
    served = SearchService(bundle, features=FeastFeatures(str(repo.repo_dir), max_age_s=0.0))
    user = int(snapshot.user_ids[0])
    items, personalised = slate(served, world, user)
    assert not personalised
    assert items == slate(SearchService(bundle), world, -1)[0]
    assert served.feature_counts()["errors"] == 1
