"""A real TorchServe on 127.0.0.1 serving the tiny generator and cascade archives side by side, once per
KServe envelope (TorchServe's envelope is per server): answers equal the library's own retriever output,
every kind of bad request gets its status and leaves the server answering."""
from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from onevision.service.client import v1_request, v2_predictions, v2_request
from serving.processes import TorchServeServer, http, post_json, running_torchserve

pytestmark = pytest.mark.integration

BAD_CASES = ("missing_image", "undecodable_image", "invalid_base64", "user_id_not_int", "user_id_overflow", "top_k_not_int",
             "top_k_out_of_range", "oversize_image")
K = 5


@pytest.fixture(scope="class")
def v1_server(tiny_archives, tmp_path_factory) -> Iterator[TorchServeServer]:
    with running_torchserve(tiny_archives.ab_store, "kserve", workdir=tmp_path_factory.mktemp("ts-v1")) as server:
        yield server


@pytest.fixture(scope="class")
def v2_server(tiny_archives, tmp_path_factory) -> Iterator[TorchServeServer]:
    with running_torchserve(tiny_archives.ab_store, "kservev2", workdir=tmp_path_factory.mktemp("ts-v2")) as server:
        yield server


# Bodies TorchServe's envelopes failed on before the handler ran (they were 503 "Prediction failed").
RAW_BAD_BODIES = [
    (b"", "application/json"), (b"not json", "application/json"), (b"null", "application/json"),
    (b"[]", "application/json"), (b'"a string"', "application/json"), (b"\xff\xfe\x00", "application/json"),
    (b"[" * 100_000 + b"]" * 100_000, "application/json"), (b"image=abc", "application/x-www-form-urlencoded"),
    (b"hello", "text/plain"),
]


def v1_call(server: TorchServeServer, model: str, body) -> tuple[int, dict]:
    response = post_json(server.urls(model)["v1"], body)
    return response.status, response.json()


def v2_call(server: TorchServeServer, model: str, body) -> tuple[int, dict]:
    response = post_json(server.urls(model)["v2"], body)
    return response.status, response.json()


class TestKServeV1:
    def test_single_request_matches_the_library(self, v1_server, serving_probe):
        photo, user = serving_probe.photos[0], serving_probe.users[0]
        status, body = v1_call(v1_server, "generator", v1_request([photo], [user], top_k=K))
        assert status == 200
        serving_probe.assert_matches_library("generator", body["predictions"], [photo], [user], K)
        assert body["predictions"][0]["personalized"] is True
        assert body["predictions"][0]["version"] == "gen-test-1"

    def test_batch_matches_the_library_row_by_row(self, v1_server, serving_probe):
        photos, users = serving_probe.photos[:3], serving_probe.users[:3]
        status, body = v1_call(v1_server, "generator", v1_request(photos, users, top_k=K))
        assert status == 200
        serving_probe.assert_matches_library("generator", body["predictions"], photos, users, K)

    def test_cascade_archive_is_served_beside_the_generator(self, v1_server, serving_probe):
        photos, users = serving_probe.photos[:2], serving_probe.users[:2]
        status, body = v1_call(v1_server, "cascade", v1_request(photos, users, top_k=K))
        assert status == 200
        serving_probe.assert_matches_library("cascade", body["predictions"], photos, users, K)

    def test_unknown_user_gets_the_non_personalised_answer(self, v1_server, serving_probe):
        photo = serving_probe.photos[0]
        status, body = v1_call(v1_server, "generator", v1_request([photo], [serving_probe.unknown_user], top_k=K))
        assert status == 200 and body["predictions"][0]["personalized"] is False
        serving_probe.assert_matches_library("generator", body["predictions"], [photo], [None], K)

    def test_body_without_instances_is_a_400(self, v1_server):
        assert v1_call(v1_server, "generator", {"inputs": []})[0] == 400

    @pytest.mark.parametrize("case", BAD_CASES)
    def test_bad_request_gets_its_status_and_the_server_keeps_answering(self, v1_server, serving_probe, case):
        instance, expected = serving_probe.bad_v1(case)
        status, body = v1_call(v1_server, "generator", {"instances": [instance]})
        assert status == expected, body
        good_status, _ = v1_call(v1_server, "generator", v1_request(serving_probe.photos[:1], top_k=1))
        assert good_status == 200


    @pytest.mark.parametrize("body, content_type", RAW_BAD_BODIES)
    def test_a_body_the_envelope_cannot_parse_is_a_400_naming_it(self, v1_server, serving_probe, body, content_type):
        response = http("POST", v1_server.urls("cascade")["v1"], body, content_type=content_type)
        assert response.status == 400, response.body[:300]
        assert "request body" in response.json()["message"] or "instances" in response.json()["message"]
        assert v1_call(v1_server, "cascade", v1_request(serving_probe.photos[:1], top_k=1))[0] == 200


class TestKServeV2:
    def test_single_request_matches_the_library(self, v2_server, serving_probe):
        photo, user = serving_probe.photos[0], serving_probe.users[0]
        status, body = v2_call(v2_server, "generator", v2_request([photo], [user], top_k=K))
        assert status == 200
        # typed tensors; TorchServe's envelope flattens each to one dimension
        assert [(o["name"], o["datatype"], o["shape"]) for o in body["outputs"]] == [
            ("item_ids", "INT64", [K]), ("scores", "FP32", [K]), ("sids", "INT64", [K * 4]), ("personalized", "BOOL", [1])]
        serving_probe.assert_matches_library("generator", v2_predictions(body), [photo], [user], K, check_model=False)

    def test_batch_as_shape_1_by_b_matches_the_library(self, v2_server, serving_probe):
        photos, users = serving_probe.photos[:3], serving_probe.users[:3]
        status, body = v2_call(v2_server, "generator", v2_request(photos, users, top_k=K, nested=True))
        assert status == 200
        serving_probe.assert_matches_library("generator", v2_predictions(body), photos, users, K, check_model=False)

    def test_flat_batch_is_a_400_naming_the_envelope_limit(self, v2_server, serving_probe):
        status, body = v2_call(v2_server, "generator", v2_request(serving_probe.photos[:2], top_k=K))
        assert status == 400 and "kservev2" in body["message"]

    def test_cascade_archive_is_served_beside_the_generator(self, v2_server, serving_probe):
        photos, users = serving_probe.photos[:2], serving_probe.users[:2]
        status, body = v2_call(v2_server, "cascade", v2_request(photos, users, top_k=K, nested=True))
        assert status == 200
        serving_probe.assert_matches_library("cascade", v2_predictions(body), photos, users, K, check_model=False)

    def test_unknown_user_gets_the_non_personalised_answer(self, v2_server, serving_probe):
        photo = serving_probe.photos[0]
        status, body = v2_call(v2_server, "generator", v2_request([photo], [serving_probe.unknown_user], top_k=K))
        assert status == 200 and v2_predictions(body)[0]["personalized"] is False

    @pytest.mark.parametrize("case", BAD_CASES)
    def test_bad_request_gets_its_status_and_the_server_keeps_answering(self, v2_server, serving_probe, case):
        inputs, expected = serving_probe.bad_v2(case)
        status, body = v2_call(v2_server, "generator", {"inputs": inputs})
        assert status == expected, body
        good_status, _ = v2_call(v2_server, "generator", v2_request(serving_probe.photos[:1], top_k=1))
        assert good_status == 200

    @pytest.mark.parametrize("body, content_type", RAW_BAD_BODIES)
    def test_a_body_the_envelope_cannot_parse_is_a_400_naming_it(self, v2_server, serving_probe, body, content_type):
        response = http("POST", v2_server.urls("generator")["v2"], body, content_type=content_type)
        assert response.status == 400, response.body[:300]
        assert "request body" in response.json()["message"] or "inputs" in response.json()["message"]
        good_status, _ = v2_call(v2_server, "generator", v2_request(serving_probe.photos[:1], top_k=1))
        assert good_status == 200

    @pytest.mark.parametrize("inputs", [[1], [{"name": "image_b64", "datatype": "BYTES", "shape": [1]}],
                                        [{"name": "image_b64", "datatype": "BYTES", "shape": [0], "data": []}]])
    def test_a_malformed_tensor_is_a_400(self, v2_server, serving_probe, inputs):
        status, body = v2_call(v2_server, "cascade", {"inputs": inputs})
        assert status == 400, body
        assert v2_call(v2_server, "cascade", v2_request(serving_probe.photos[:1], top_k=1))[0] == 200

    def test_metrics_endpoint_answers(self, v2_server):
        response = http("GET", f"{v2_server.metrics_url}/metrics")
        assert response.status == 200 and b"ts_inference_requests_total" in response.body


def test_archive_layout_is_what_kserve_reads(tiny_archives):
    from serving.ts_config import read_mar_model

    layout = tiny_archives.generator
    props = dict(line.split("=", 1) for line in (layout / "config" / "config.properties").read_text().splitlines()
                 if "=" in line and not line.startswith("#"))
    snapshot = json.loads(props["model_snapshot"])
    assert snapshot["models"]["generator"]["1.0"]["marName"] == "generator.mar"
    assert props["model_store"] == "/mnt/models/model-store" and props["disable_token_authorization"] == "true"
    assert read_mar_model(layout / "model-store" / "generator.mar").name == "generator"
    assert json.loads((layout / "parity.json").read_text())["passed"] is True
    assert json.loads((layout / "manifest.json").read_text())["bundle"]["kind"] == "generator"
