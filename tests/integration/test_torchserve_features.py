"""TorchServe reading user features online from a Feast repo (ONEVISION_FEATURE_REPO): its answers equal the
library's for the same features, and the handler's lookup counters reach TorchServe's Prometheus endpoint
(declared in the metrics config written beside config.properties)."""
from __future__ import annotations

import re

import pytest

from onevision.featurestore.materialize import materialize
from onevision.featurestore.repo import FeatureRepoConfig
from onevision.service.client import v2_predictions, v2_request
from onevision.userfeatures import UserFeatureTable
from serving.processes import http, post_json, running_torchserve
from serving.ts_metrics import feature_metric_names

pytestmark = pytest.mark.integration
K = 5


def test_feast_backed_torchserve_answers_and_counts_its_lookups(tiny_archives, tiny_bundles, serving_probe,
                                                                 tmp_path):
    repo = FeatureRepoConfig(tmp_path / "repo")
    materialize(UserFeatureTable.load(tiny_bundles.generator / "userfeatures"), repo)
    env = {"ONEVISION_FEATURE_REPO": str(repo.repo_dir)}
    with running_torchserve(tiny_archives.ab_store, "kservev2", workdir=tmp_path / "ts", extra_env=env) as server:
        photos, users = serving_probe.photos[:1], serving_probe.users[:1]
        for model in ("generator", "cascade"):
            response = post_json(server.urls(model)["v2"], v2_request(photos, users, top_k=K))
            assert response.status == 200, response.body
            # the store holds the snapshot's rows: the same slates as the library reading the snapshot
            serving_probe.assert_matches_library(model, v2_predictions(response.json()), photos, users, K,
                                                 check_model=False)
        text = http("GET", f"{server.metrics_url}/metrics").body.decode()
    assert set(feature_metric_names()) <= set(re.findall(r"^# TYPE (UserFeature\w+) counter", text, re.M)), text[-2000:]
    for model in ("generator", "cascade"):  # each known user read once per request, and found
        for name in ("UserFeatureLookups", "UserFeatureHits"):
            values = re.findall(rf'^{name}\{{[^}}]*ModelName="{model}"[^}}]*\}} (\S+)', text, re.M)
            assert values and float(values[0]) >= 1, (name, model, text[-2000:])
