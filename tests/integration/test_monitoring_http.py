"""HttpArm against a real HTTP server on 127.0.0.1 that wraps the serving core (`SearchService`) with the
v1 and v2 protocols: the slates and SID prefixes it logs equal those of the same model in process, for a
small deterministic retriever and for the tiny trained generator bundle."""
from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from s3_server import moto_s3, s3_env  # noqa: F401 (moto_s3 is a fixture)

from monitoring.arms import ArmError, HttpArm, InProcessArm, QueryBatch, RetrieverArm
from monitoring.replay import replay_ab
from monitoring.rules import DEFAULT_RULES_PATH
from onevision.contracts import Ranking
from onevision.service.protocol import BadRequest, ModelInfo
from onevision.service.search import SearchService
from onevision.world import load_world
from onevision.world.render import decode_image

pytestmark = pytest.mark.integration


@dataclass
class _Decoded:
    item_ids: np.ndarray
    scores: np.ndarray
    sids: np.ndarray


class ColourRetriever:
    """Ranks items by the distance of their front view's mean colour to the photo's; SIDs start with the
    item's category, so a served response carries them like the generator's."""

    name = "colour"

    def __init__(self, world_dir: Path):
        world = load_world(world_dir)
        front = world.item_views[world.item_views["view"] == "front"]
        self.item_ids = front["item_id"].to_numpy(np.int64)
        self.colours = np.stack([decode_image(b).reshape(-1, 3).mean(0) for b in front["image"]])
        self.category = world.items.set_index("item_id").loc[self.item_ids, "category"].to_numpy(np.int64)

    def decode(self, images: np.ndarray, user_ids: np.ndarray | None, k: int) -> _Decoded:
        dist = np.linalg.norm(images.reshape(len(images), -1, 3).mean(1)[:, None] - self.colours[None], axis=-1)
        top = np.argsort(dist, axis=1, kind="stable")[:, :k]
        sids = np.stack([self.category[top], np.zeros_like(top)], axis=-1)
        return _Decoded(self.item_ids[top], -np.take_along_axis(dist, top, 1).astype(np.float32), sids)

    def retrieve(self, images: np.ndarray, user_ids: np.ndarray | None, k: int) -> Ranking:
        out = self.decode(images, user_ids, k)
        return Ranking(out.item_ids, out.scores)


def _handler(service: SearchService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            try:
                if self.path == "/v1/models/m:predict":
                    status, answer = 200, service.predict_v1(body)
                elif self.path == "/v2/models/m/infer":
                    status, answer = 200, service.predict_v2(body, "m")
                else:
                    status, answer = 404, {"error": f"no route {self.path}"}
            except BadRequest as exc:
                status, answer = exc.status, {"error": str(exc)}
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@contextlib.contextmanager
def serve_http(service: SearchService) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 (free port) around `service`; always shut down."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(service))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def colour_url(tiny_world_dir: Path) -> Iterator[str]:
    info = ModelInfo(kind="generator", version="colour-1", image_size=64)
    service = SearchService.from_retriever(ColourRetriever(tiny_world_dir), info, known_users=lambda ids: ids >= 0)
    with serve_http(service) as url:
        yield url


def _batch(world_dir: Path, n: int = 6) -> QueryBatch:
    q = load_world(world_dir).queries_of("test").head(n)
    png = [bytes(b) for b in q["image"]]
    return QueryBatch(np.stack([decode_image(b) for b in png]), png, q["user_id"].to_numpy(np.int64))


@pytest.mark.parametrize("protocol,path", [("v1", "/v1/models/m:predict"), ("v2", "/v2/models/m/infer")])
def test_http_arm_logs_what_the_model_answers_in_process(tiny_world_dir: Path, colour_url: str, protocol: str,
                                                        path: str) -> None:
    batch = _batch(tiny_world_dir)
    local = RetrieverArm(ColourRetriever(tiny_world_dir)).serve(batch, 5)
    remote = HttpArm(colour_url + path, protocol=protocol).serve(batch, 5)
    assert np.array_equal(remote.item_ids, local.item_ids)
    assert np.array_equal(remote.sid_prefix, local.sid_prefix) and (remote.sid_prefix >= 0).all()
    assert (remote.latency_ms > 0).all()


def test_a_replay_through_http_equals_the_replay_in_process(tiny_world_dir: Path, colour_url: str) -> None:
    def replay(control, canary) -> pd.DataFrame:
        log = replay_ab(tiny_world_dir, control, canary, canary_percent=50, days=(6,), queries_per_day=24, seed=1)
        return log.requests.drop(columns=["latency_ms", "model"])

    url = colour_url + "/v1/models/m:predict"
    in_process = replay(RetrieverArm(ColourRetriever(tiny_world_dir)), RetrieverArm(ColourRetriever(tiny_world_dir)))
    over_http = replay(HttpArm(url), HttpArm(url, protocol="v1"))
    pd.testing.assert_frame_equal(over_http, in_process)


def test_a_server_error_is_reported_with_its_status(tiny_world_dir: Path, colour_url: str) -> None:
    with pytest.raises(ArmError, match="HTTP 404"):
        HttpArm(colour_url + "/v1/models/other:predict").serve(_batch(tiny_world_dir, 1), 5)


def test_an_unreachable_server_is_named(tiny_world_dir: Path) -> None:
    with pytest.raises(ArmError, match="127.0.0.1:9"):
        HttpArm("http://127.0.0.1:9/v1/models/m:predict", timeout_s=2).serve(_batch(tiny_world_dir, 1), 5)


# --------------------------------------------------------------------- the tiny trained generator bundle
@pytest.fixture
def bundle_url(tiny_bundles) -> Iterator[str]:
    with serve_http(SearchService(tiny_bundles.generator)) as url:
        yield url


def test_a_served_bundle_answers_like_the_bundle_in_process(tiny_bundles, bundle_url: str) -> None:
    batch = _batch(tiny_bundles.world)
    arm = InProcessArm(tiny_bundles.generator)
    local = arm.serve(batch, 10)
    for protocol, path in (("v1", "/v1/models/m:predict"), ("v2", "/v2/models/m/infer")):
        remote = HttpArm(bundle_url + path, protocol=protocol).serve(batch, 10)
        assert np.array_equal(remote.item_ids, local.item_ids), protocol
        assert np.array_equal(remote.sid_prefix, local.sid_prefix), protocol
    assert arm.name == "generator@gen-test-1" and (local.sid_prefix >= 0).all()


def test_a_bundle_arm_logs_embedding_components(tiny_bundles) -> None:
    arm = InProcessArm(tiny_bundles.generator)
    log = replay_ab(tiny_bundles.world, arm, arm, canary_percent=0, days=(6,), queries_per_day=16)
    assert log.requests[["emb_pc1", "emb_pc2"]].notna().all().all()
    assert (log.requests["sid_prefix"] >= 0).all()


# --------------------------------------------------------------------- the CronJob path on a real S3 endpoint
def test_drift_report_and_review_work_on_s3(tiny_world_dir: Path, moto_s3, monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    """`onevision drift report --reference s3://… --current s3://… --out s3://…`, then `drift review`."""
    from typer.testing import CliRunner

    from monitoring.cli import drift_app

    moto_s3.reset()
    for bucket in ("onevision-logs", "onevision-reports"):
        moto_s3.create_bucket(bucket)
    s3_env(monkeypatch, moto_s3.endpoint_url)
    monkeypatch.setenv("ONEVISION_CACHE_DIR", str(tmp_path / "cache"))
    arm = RetrieverArm(ColourRetriever(tiny_world_dir))
    log = replay_ab(tiny_world_dir, arm, arm, canary_percent=50, days=(6, 7), queries_per_day=40, seed=2)
    log.save("s3://onevision-logs/requests")
    rules = tmp_path / "rules.yaml"
    rules.write_text(DEFAULT_RULES_PATH.read_text().replace("min_requests: 200  #", "min_requests: 10  #"))

    runner = CliRunner()
    uri = "s3://onevision-logs/requests"
    result = runner.invoke(drift_app, ["report", "--reference", uri, "--current", uri, "--out",
                                       "s3://onevision-reports/drift", "--rules", str(rules), "--run-id", "s3run"])
    assert result.exit_code == 0, result.output
    keys = {o["Key"] for o in moto_s3.client().list_objects_v2(Bucket="onevision-reports")["Contents"]}
    assert {"drift/s3run/index.html", "drift/s3run/summary.json", "drift/s3run/evidently_control.html",
            "drift/latest.json"} <= keys

    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", lambda url: opened.append(url) or True)
    review = runner.invoke(drift_app, ["review", "--open"], env={"REPORT_URI": "s3://onevision-reports/drift"})
    assert review.exit_code == 0, review.output
    assert "latest report (s3run): s3://onevision-reports/drift/s3run/index.html" in review.output
    assert opened and Path(opened[0].removeprefix("file://")).is_file()
