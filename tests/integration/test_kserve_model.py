"""The kserve.Model predictor (`python -m serving.kserve_main`) as a real server process: one server answers
v1 and v2; answers equal the library's own retriever output; bad requests get 400/413 and leave it
answering. It serves the archive layout that `serving.archive` writes (the bundle is read from the .mar).
KServe binds 0.0.0.0 whatever we ask; every request here goes to 127.0.0.1."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from onevision.service.client import v1_request, v2_predictions, v2_request
from serving.processes import KServeServer, http, post_json, running_kserve

pytestmark = pytest.mark.integration

BAD_CASES = ("missing_image", "undecodable_image", "invalid_base64", "user_id_not_int", "user_id_overflow", "top_k_not_int",
             "top_k_out_of_range", "oversize_image")
K = 5
MODEL = "generator"


@pytest.fixture(scope="module")
def server(tiny_archives, tmp_path_factory) -> Iterator[KServeServer]:
    with running_kserve(tiny_archives.generator, MODEL, workdir=tmp_path_factory.mktemp("kserve")) as server:
        yield server


def call(server: KServeServer, protocol: str, body) -> tuple[int, dict]:
    response = post_json(server.urls()[protocol], body)
    return response.status, response.json()


def test_model_reports_ready(server):
    assert http("GET", f"{server.url}/v1/models/{MODEL}").json() == {"name": MODEL, "ready": True}


def test_v1_batch_matches_the_library(server, serving_probe):
    photos, users = serving_probe.photos[:3], serving_probe.users[:3]
    status, body = call(server, "v1", v1_request(photos, users, top_k=K))
    assert status == 200
    serving_probe.assert_matches_library("generator", body["predictions"], photos, users, K)


def test_v2_flat_batch_matches_the_library(server, serving_probe):
    photos, users = serving_probe.photos[:3], serving_probe.users[:3]
    status, body = call(server, "v2", v2_request(photos, users, top_k=K))
    assert status == 200
    assert [(o["name"], o["datatype"], o["shape"]) for o in body["outputs"]] == [
        ("item_ids", "INT64", [3, K]), ("scores", "FP32", [3, K]), ("sids", "INT64", [3, K, 4]),
        ("personalized", "BOOL", [3])]
    assert body["model_version"] == "gen-test-1" and body["parameters"] == {"model": "generator"}
    serving_probe.assert_matches_library("generator", v2_predictions(body), photos, users, K)


def test_kserve_own_rest_client_reads_typed_tensors(server, serving_probe):
    """Open Inference Protocol as KServe's own client speaks it: InferRequest in, typed numpy outputs back."""
    import asyncio

    import numpy as np
    from kserve import InferenceRESTClient, RESTConfig
    from kserve.protocol.infer_type import InferInput, InferRequest

    from onevision.service.client import encode_image

    photos, users = serving_probe.photos[:2], serving_probe.users[:2]
    images = InferInput("image_b64", [2], "BYTES", [encode_image(p) for p in photos])
    user_ids = InferInput("user_id", [2], "INT64", users)
    top_k = InferInput("top_k", [1], "INT64", [K])
    request = InferRequest(model_name=MODEL, infer_inputs=[images, user_ids, top_k], request_id="typed-1")

    async def infer():
        client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=60))
        try:
            return await client.infer(server.url, request, model_name=MODEL)
        finally:
            await client.close()

    response = asyncio.run(infer())
    outputs = {o.name: o.as_numpy() for o in response.outputs}
    assert response.id == "typed-1" and response.parameters == {"model": "generator"}  # (from_bytes drops model_version)
    assert outputs["item_ids"].dtype == np.int64 and outputs["item_ids"].shape == (2, K)
    assert outputs["scores"].dtype == np.float32 and outputs["sids"].shape == (2, K, 4)
    assert outputs["personalized"].tolist() == [True, True]
    expected = serving_probe.library_items("generator", photos, users, K)
    assert outputs["item_ids"].tolist() == [[w["item_id"] for w in want] for want in expected]


def test_v2_nested_batch_gives_the_same_answer_as_flat(server, serving_probe):
    photos, users = serving_probe.photos[:2], serving_probe.users[:2]
    flat = v2_predictions(call(server, "v2", v2_request(photos, users, top_k=K))[1])
    nested = v2_predictions(call(server, "v2", v2_request(photos, users, top_k=K, nested=True))[1])
    assert flat == nested


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_unknown_user_gets_the_non_personalised_answer(server, serving_probe, protocol):
    photo, unknown = serving_probe.photos[0], serving_probe.unknown_user
    make = v1_request if protocol == "v1" else v2_request
    status, body = call(server, protocol, make([photo], [unknown], top_k=K))
    predictions = body["predictions"] if protocol == "v1" else v2_predictions(body)
    assert status == 200 and predictions[0]["personalized"] is False
    serving_probe.assert_matches_library("generator", predictions, [photo], [None], K)


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_v1_request_gets_its_status_and_the_server_keeps_answering(server, serving_probe, case):
    instance, expected = serving_probe.bad_v1(case)
    status, body = call(server, "v1", {"instances": [instance]})
    assert status == expected, body
    assert call(server, "v1", v1_request(serving_probe.photos[:1], top_k=1))[0] == 200


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_v2_request_gets_its_status_and_the_server_keeps_answering(server, serving_probe, case):
    inputs, expected = serving_probe.bad_v2(case)
    status, body = call(server, "v2", {"inputs": inputs})
    assert status == expected, body
    assert call(server, "v2", v2_request(serving_probe.photos[:1], top_k=1))[0] == 200


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_a_body_over_the_request_limit_is_a_413_and_never_parsed(server, serving_probe, protocol):
    from onevision.service.limits import ServiceLimits

    limit = ServiceLimits().max_request_bytes
    body = b'{"instances": ["' + b"A" * (limit + 1) + b'"]}'
    response = http("POST", server.urls()[protocol], body)
    assert response.status == 413 and str(limit) in response.json()["error"]
    assert len(response.body) < 500
    assert call(server, protocol, v1_request(serving_probe.photos[:1], top_k=1) if protocol == "v1"
                else v2_request(serving_probe.photos[:1], top_k=1))[0] == 200


def test_a_validation_error_names_the_problem_without_echoing_the_payload(server, serving_probe):
    payload = "B" * 2_000_000
    response = post_json(server.urls()["v2"], {"inputs": payload})  # not a list of tensors
    assert 400 <= response.status < 500
    assert len(response.body) < 10_000 and payload[:100] not in response.body.decode()
    assert call(server, "v2", v2_request(serving_probe.photos[:1], top_k=1))[0] == 200
