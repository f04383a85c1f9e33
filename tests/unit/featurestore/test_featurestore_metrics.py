"""The online feature reads' counters reach both servers' metrics."""
from __future__ import annotations

import base64
from pathlib import Path

from ts.context import Context, RequestProcessor

from onevision.featurestore.live import FEATURE_REPO_ENV, FEATURE_TIMEOUT_ENV, FeastFeatures
from onevision.featurestore.materialize import materialize
from onevision.featurestore.repo import FeatureRepoConfig
from onevision.service.search import SearchService
from onevision.userfeatures import UserFeatureTable
from onevision.world import load_world
from serving.kserve_model import FeatureCountsCollector, OneVisionModel
from serving.torchserve_handler import OneVisionHandler

from materialized_at import AS_OF


class RecordingMetrics:
    def __init__(self) -> None:
        self.counters: dict[str, float] = {}

    def add_counter(self, name: str, value: float, idx=None, dimensions=None) -> None:
        self.counters[name] = self.counters.get(name, 0) + value


def served_repo(tiny_models, tmp_path: Path) -> tuple[Path, UserFeatureTable]:
    snapshot = UserFeatureTable.load(tiny_models.cascade_bundle / "cascade/rank/users")
    materialize(snapshot, FeatureRepoConfig(tmp_path / "repo"), AS_OF)
    return tmp_path / "repo", snapshot


def instances(tiny_models, users: list[int]) -> list[dict]:
    image = load_world(tiny_models.world).queries_of("test")["image"].iloc[0]
    return [{"image_b64": base64.b64encode(image).decode(), "user_id": u, "top_k": 4} for u in users]


def test_the_torchserve_handler_adds_the_reads_to_its_custom_counters(tiny_models, tmp_path: Path) -> None:
    repo, snapshot = served_repo(tiny_models, tmp_path)
    handler = OneVisionHandler()
    handler.service = SearchService(tiny_models.cascade_bundle, features=FeastFeatures(str(repo)))
    handler._reported = {}
    ctx = Context("onevision", "/nonexistent", {"model": {"modelName": "onevision"}}, 1, None, "0.12")
    ctx.request_processor, ctx.request_ids = [RequestProcessor({})], {0: "req-0"}
    ctx.metrics = RecordingMetrics()
    handler.handle(instances(tiny_models, [int(snapshot.user_ids[0]), 10**6]), ctx)
    handler.handle(instances(tiny_models, [int(snapshot.user_ids[1])]), ctx)
    assert ctx.metrics.counters == {"UserFeatureLookups": 3, "UserFeatureHits": 2, "UserFeatureUnknown": 1}


def test_the_kserve_model_exposes_the_reads_to_prometheus(tiny_models, tmp_path: Path) -> None:
    repo, snapshot = served_repo(tiny_models, tmp_path)
    model = OneVisionModel("onevision", tiny_models.cascade_bundle, features=FeastFeatures(str(repo), timeout_ms=500))
    model.load()
    response = model.predict({"instances": instances(tiny_models, [int(snapshot.user_ids[0])])})
    assert response["predictions"][0]["personalized"] is True
    (family,) = FeatureCountsCollector(model).collect()
    counts = {s.labels["outcome"]: s.value for s in family.samples if s.name.endswith("_total")}
    assert counts["hits"] == 1 and counts["timeouts"] == 0


def test_the_environment_chooses_feast_for_torchserve() -> None:
    assert FeastFeatures.from_env({}) is None
    chosen = FeastFeatures.from_env({FEATURE_REPO_ENV: "/repo", FEATURE_TIMEOUT_ENV: "40"})
    assert (chosen.repo_dir, chosen.timeout_ms) == ("/repo", 40)
