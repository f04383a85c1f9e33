"""The TorchServe handler's adapter logic, called the way TorchServe's worker calls it (a real
`ts.context.Context`), for each service envelope; tests/integration/test_torchserve.py runs it in TorchServe."""
from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from ts.context import Context, RequestProcessor
from ts.utils.util import PredictionException

from onevision.evaluation.retriever import PopularityRetriever
from onevision.service.client import v2_request
from onevision.service.limits import ServiceLimits
from onevision.service.protocol import ModelInfo
from onevision.service.search import SearchService
from onevision.world.render import encode_png
from serving.torchserve_handler import OneVisionHandler

PHOTO = encode_png(np.zeros((16, 16, 3), dtype=np.uint8))


def handler(**limits) -> OneVisionHandler:
    h = OneVisionHandler()
    retriever = PopularityRetriever(np.arange(10), np.arange(10, 0, -1, dtype=np.float32))
    h.service = SearchService.from_retriever(retriever, ModelInfo("cascade", "v1", 16), limits=ServiceLimits(**limits))
    return h


def context(n_requests: int = 1) -> Context:
    ctx = Context("onevision", "/nonexistent", {"model": {"modelName": "onevision", "modelVersion": "1.0"}}, 1, None, "0.12")
    ctx.request_processor = [RequestProcessor({}) for _ in range(n_requests)]
    ctx.request_ids = {i: f"req-{i}" for i in range(n_requests)}
    return ctx


def test_raw_image_body_gets_one_response():
    (response,) = handler().handle([{"body": PHOTO}], context())
    assert response["model"] == "cascade" and len(response["items"]) == 10


def test_raw_json_instance_body_gets_one_response():
    (response,) = handler().handle([{"body": {"image_b64": base64.b64encode(PHOTO).decode(), "top_k": 2}}], context())
    assert [item["item_id"] for item in response["items"]] == [0, 1]


def test_raw_v2_body_gets_a_v2_response():
    (response,) = handler().handle([{"body": v2_request([PHOTO], top_k=1)}], context())
    assert [o["name"] for o in response["outputs"]][:2] == ["item_ids", "scores"] and response["id"] == "req-0"


def test_bad_row_in_a_torchserve_batch_gets_its_own_status():
    ctx = context(2)
    good, bad = handler().handle([{"body": PHOTO}, {"body": b"not an image"}], ctx)
    assert good["items"] and bad["code"] == 400
    assert ctx.get_response_status(0)[0] == 200 and ctx.get_response_status(1)[0] == 400


def test_kserve_envelope_instances_get_one_prediction_each():
    instances = [{"image_b64": base64.b64encode(PHOTO).decode(), "top_k": k} for k in (1, 3)]
    responses = handler().handle(instances, context())
    assert [len(r["items"]) for r in responses] == [1, 3]


def test_kservev2_envelope_gets_typed_tensors_named_through_input_names():
    ctx = context()
    ctx.input_names = ["image_b64"]  # what the envelope sets before calling the handler
    inputs = v2_request([PHOTO, PHOTO], top_k=2, nested=True)["inputs"]
    outputs = handler().handle(inputs, ctx)
    assert ctx.input_names[:2] == ["item_ids", "scores"] and ctx.input_names[-1] == "personalized"
    by_name = dict(zip(ctx.input_names, outputs))
    assert by_name["item_ids"].dtype == np.int64 and by_name["item_ids"].shape == (2, 2)
    assert by_name["scores"].dtype == np.float32 and by_name["personalized"].tolist() == [False, False]


def test_bad_request_becomes_a_prediction_exception_with_400():
    with pytest.raises(PredictionException) as info:
        handler().handle([{"user_id": 3}], context())
    assert info.value.error_code == 400 and "missing image" in info.value.message


def test_missing_instances_under_the_kserve_envelope_is_a_400():
    with pytest.raises(PredictionException) as info:
        handler().handle(None, context())
    assert info.value.error_code == 400


def test_oversize_payload_is_answered_with_status_413():
    # TorchServe's frontend turns a raised 413 into 507, so the handler sets the status on the response.
    ctx = context()
    (body,) = handler(max_image_bytes=100).handle([{"image": PHOTO + bytes(200)}], ctx)
    assert ctx.get_response_status(0)[0] == 413 and body["code"] == 413


def test_every_limit_can_be_set_from_the_environment():
    import dataclasses

    from serving.torchserve_handler import limits_from_env

    assert limits_from_env({}) == ServiceLimits()
    env = {f"ONEVISION_{f.name.upper()}": str(getattr(ServiceLimits(), f.name) + 1) for f in dataclasses.fields(ServiceLimits)
           if f.name != "default_top_k"}
    limits = limits_from_env(env)
    assert limits.max_batch == ServiceLimits().max_batch + 1 and limits.max_request_pixels == ServiceLimits().max_request_pixels + 1


def test_the_kserve_server_has_one_flag_per_limit():
    import dataclasses

    from serving.kserve_main import build_parser

    args = build_parser().parse_args(["--model_dir", "/m", "--max_batch", "7"])
    assert args.max_batch == 7
    assert all(getattr(args, f.name) == getattr(ServiceLimits(), f.name)
               for f in dataclasses.fields(ServiceLimits) if f.name != "max_batch")
