"""SearchService: request validation (400/413), unknown-user fallback, response shape, KServe v1/v2 envelopes.

The service wraps a small recording retriever here; tests/integration/ serve real trained bundles."""
from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass, field

import numpy as np
import pytest
from PIL import Image

from onevision.contracts import Ranking
from onevision.generator.decode import DecodeResult
from onevision.service.client import v1_request, v2_predictions, v2_request
from onevision.service.envelopes import v2_instances, v2_response
from onevision.service.limits import ServiceLimits
from onevision.service.protocol import BadRequest, ModelInfo, SearchResult
from onevision.service.search import SearchService
from onevision.world.render import encode_png

SIZE = 16
KNOWN_USERS = np.array([3, 17])


def png(side: int = SIZE, seed: int = 0) -> bytes:
    return encode_png(np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass
class RecordingRetriever:
    """Item i of a list is 100*row + i with score -i; pads past `n_items`; remembers every call."""

    n_items: int = 50
    depth: int = 3
    calls: list[tuple[np.ndarray, np.ndarray | None, int]] = field(default_factory=list)
    name: str = "recording"

    def _ranked(self, images: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        b = len(images)
        ids = 100 * np.arange(b)[:, None] + np.arange(k)[None, :]
        scores = -np.tile(np.arange(k, dtype=np.float32), (b, 1))
        ids[:, self.n_items:] = -1
        scores[:, self.n_items:] = -np.inf
        return ids, scores

    def retrieve(self, images: np.ndarray, user_ids: np.ndarray | None, k: int) -> Ranking:
        self.calls.append((images.copy(), None if user_ids is None else user_ids.copy(), k))
        return Ranking(*self._ranked(images, k))


class RecordingGenerator(RecordingRetriever):
    def decode(self, images: np.ndarray, user_ids: np.ndarray | None, k: int) -> DecodeResult:
        self.calls.append((images.copy(), None if user_ids is None else user_ids.copy(), k))
        ids, scores = self._ranked(images, k)
        sids = np.stack([ids % 7, ids % 5, ids % 3], axis=-1)
        return DecodeResult(ids, sids, scores)


def service(kind: str = "cascade", retriever: RecordingRetriever | None = None, **limits) -> SearchService:
    retriever = retriever or (RecordingGenerator() if kind == "generator" else RecordingRetriever())
    return SearchService.from_retriever(
        retriever, ModelInfo(kind=kind, version="v7", image_size=SIZE),
        known_users=lambda ids: np.isin(ids, KNOWN_USERS), limits=ServiceLimits(**limits),
    )


def bad(svc: SearchService, instances) -> BadRequest:
    with pytest.raises(BadRequest) as info:
        svc.predict(instances)
    return info.value


# ------------------------------------------------------------------------------------------ responses
def test_response_lists_ranked_items_with_model_and_version():
    (response,) = service().predict([{"image_b64": b64(png()), "top_k": 3}])
    assert response == {
        "items": [{"item_id": 0, "sid": None, "score": 0.0}, {"item_id": 1, "sid": None, "score": -1.0},
                  {"item_id": 2, "sid": None, "score": -2.0}],
        "personalized": False, "model": "cascade", "version": "v7",
    }


def test_generator_response_carries_each_items_sid():
    (response,) = service("generator").predict([{"image_b64": b64(png()), "top_k": 2}])
    assert [item["sid"] for item in response["items"]] == [[0, 0, 0], [1, 1, 1]]


def test_padding_of_a_short_list_is_dropped():
    svc = service(retriever=RecordingRetriever(n_items=2))
    (response,) = svc.predict([{"image_b64": b64(png()), "top_k": 5}])
    assert [item["item_id"] for item in response["items"]] == [0, 1]


def test_default_top_k_applies_when_none_is_given():
    (response,) = service(default_top_k=4).predict([{"image_b64": b64(png())}])
    assert len(response["items"]) == 4


def test_batch_rows_keep_their_own_top_k_and_order():
    retriever = RecordingRetriever()
    rows = [{"image_b64": b64(png(seed=i)), "top_k": k} for i, k in enumerate([2, 5, 2])]
    responses = service(retriever=retriever).predict(rows)
    assert [len(r["items"]) for r in responses] == [2, 5, 2]
    assert sorted(call[2] for call in retriever.calls) == [2, 5]  # one retriever call per distinct k


def test_images_reach_the_retriever_resized_to_the_model_size():
    retriever = RecordingRetriever()
    service(retriever=retriever).predict([{"image_b64": b64(png(side=40))}])
    images = retriever.calls[0][0]
    assert images.shape == (1, SIZE, SIZE, 3) and images.dtype == np.uint8


def test_known_user_is_personalised():
    retriever = RecordingRetriever()
    (response,) = service(retriever=retriever).predict([{"image_b64": b64(png()), "user_id": 17}])
    assert response["personalized"] is True
    assert retriever.calls[0][1].tolist() == [17]


def test_unknown_user_falls_back_to_the_non_personalised_path():
    retriever = RecordingRetriever()
    (response,) = service(retriever=retriever).predict([{"image_b64": b64(png()), "user_id": 999}])
    assert response["personalized"] is False
    assert retriever.calls[0][1].tolist() == [-1]


def test_known_user_is_not_personalised_by_a_model_without_user_features():
    retriever = RecordingRetriever()
    retriever.known_users = lambda ids: np.zeros(len(ids), dtype=bool)  # its PersonalisedRetriever answer
    (response,) = service(retriever=retriever).predict([{"image_b64": b64(png()), "user_id": 17}])
    assert response["personalized"] is False


def test_raw_bytes_and_kserve_b64_objects_are_accepted_as_images():
    data = png()
    retriever = RecordingRetriever()
    service(retriever=retriever).predict([{"image": data}, {"image": {"b64": b64(data)}}, {"image_b64": b64(data)}])
    images = retriever.calls[0][0]
    assert len(images) == 3 and (images[0] == images[1]).all() and (images[1] == images[2]).all()


def test_rgba_and_grayscale_images_are_accepted():
    def encoded(mode: str) -> bytes:
        buf = io.BytesIO()
        Image.new(mode, (SIZE, SIZE)).save(buf, format="PNG")
        return buf.getvalue()

    responses = service().predict([{"image": encoded("RGBA")}, {"image": encoded("L")}])
    assert len(responses) == 2


# -------------------------------------------------------------------------------------- bad requests
def test_missing_image_is_a_400_naming_the_field():
    error = bad(service(), [{"user_id": 3}])
    assert error.status == 400 and "missing image" in error.reason and "instances[0]" in error.reason


def test_undecodable_image_bytes_are_a_400():
    error = bad(service(), [{"image_b64": b64(b"definitely not a png")}])
    assert error.status == 400 and "could not be decoded" in error.reason


def test_invalid_base64_is_a_400():
    error = bad(service(), [{"image_b64": "###not base64###"}])
    assert error.status == 400 and "base64" in error.reason


@pytest.mark.parametrize(
    "instance, field_name",
    [
        ({"user_id": "17"}, "user_id"),
        ({"user_id": True}, "user_id"),
        ({"user_id": 1.5}, "user_id"),
        ({"top_k": "10"}, "top_k"),
        ({"top_k": 2.0}, "top_k"),
        ({"image_b64": 12345}, "image_b64"),
    ],
)
def test_wrong_types_are_a_400_naming_the_field(instance, field_name):
    row = {"image_b64": b64(png()), **instance}
    error = bad(service(), [row])
    assert error.status == 400 and field_name in error.reason


def test_an_instance_that_is_not_an_object_is_a_400():
    assert bad(service(), ["just a string"]).status == 400


def test_unknown_fields_are_a_400():
    error = bad(service(), [{"image_b64": b64(png()), "topk": 3}])
    assert error.status == 400 and "topk" in error.reason


@pytest.mark.parametrize("top_k", [0, -1, 101])
def test_top_k_out_of_range_is_a_400(top_k):
    error = bad(service(max_top_k=100), [{"image_b64": b64(png()), "top_k": top_k}])
    assert error.status == 400 and "top_k" in error.reason


def test_oversize_image_bytes_are_a_413():
    error = bad(service(max_image_bytes=1000), [{"image": b"\x89PNG" + bytes(2000)}])
    assert error.status == 413


def test_oversize_base64_is_a_413_before_decoding():
    error = bad(service(max_image_bytes=1000), [{"image_b64": "A" * 5000}])
    assert error.status == 413 and "base64" in error.reason


def test_too_many_pixels_is_a_413():
    error = bad(service(max_image_pixels=20 * 20), [{"image": png(side=32)}])
    assert error.status == 413 and "pixels" in error.reason


def test_the_pixel_budget_is_per_request_not_per_image():
    svc = service(max_image_pixels=32 * 32, max_request_pixels=2 * 32 * 32)
    assert len(svc.predict([{"image": png(side=32)}] * 2)) == 2
    error = bad(svc, [{"image": png(side=32)}] * 3)
    assert error.status == 413 and "instances[2]" in error.reason and "in all" in error.reason


def encoded(image_format: str, side: int = SIZE) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (side, side, 3), dtype=np.uint8)).save(buffer, image_format)
    return buffer.getvalue()


@pytest.mark.parametrize("image_format", ["TIFF", "GIF", "BMP", "WEBP"])
def test_formats_outside_the_contract_are_a_400_naming_png_and_jpeg(image_format):
    error = bad(service(), [{"image": encoded(image_format)}])
    assert error.status == 400 and "PNG or JPEG" in error.reason


def test_a_large_jpeg_is_decoded_to_the_model_size():
    (answer,) = service().predict([{"image": encoded("JPEG", side=1024)}])
    assert answer["items"]


def test_too_many_instances_is_a_413():
    error = bad(service(max_batch=2), [{"image_b64": b64(png())}] * 3)
    assert error.status == 413


def test_empty_batch_is_a_400():
    assert bad(service(), []).status == 400


def test_bad_request_only_carries_client_statuses():
    with pytest.raises(ValueError):
        BadRequest("server trouble", 500)


# ----------------------------------------------------------------------------------------- envelopes
def test_v1_envelope_wraps_predictions():
    body = v1_request([png(seed=1), png(seed=2)], user_ids=[17, None], top_k=3)
    out = service().predict_v1(body)
    assert [p["personalized"] for p in out["predictions"]] == [True, False]
    assert all(len(p["items"]) == 3 for p in out["predictions"])


def test_v1_body_without_instances_is_a_400():
    with pytest.raises(BadRequest) as info:
        service().predict_v1({"inputs": []})
    assert info.value.status == 400 and "instances" in info.value.reason


def test_v2_tensors_give_the_same_answers_as_v1():
    images, users = [png(seed=1), png(seed=2)], [17, 999]
    svc = service()
    v1 = svc.predict_v1(v1_request(images, users, top_k=4))["predictions"]
    v2 = v2_predictions(svc.predict_v2(v2_request(images, users, top_k=4), model_name="onevision"))
    assert v1 == v2


def test_v2_batch_may_be_nested_as_shape_1_by_b():
    images = [png(seed=1), png(seed=2), png(seed=3)]
    flat = v2_instances(v2_request(images, [3, 4, 5], top_k=2)["inputs"])
    nested = v2_instances(v2_request(images, [3, 4, 5], top_k=2, nested=True)["inputs"])
    assert flat == nested and [row["user_id"] for row in flat] == [3, 4, 5]


def test_v2_outputs_are_typed_tensors_padded_to_the_longest_row():
    results = [SearchResult(np.array([7, 3]), np.array([0.5, -np.inf], np.float32), np.array([[1, 2], [1, 3]]), True),
               SearchResult(np.array([4]), np.array([0.25], np.float32), np.array([[5, 6]]), False)]
    response = v2_response(results, "onevision", ModelInfo("generator", "v7", 64), request_id="r1")
    tensors = {t["name"]: t for t in response["outputs"]}
    assert [(t["datatype"], t["shape"]) for t in tensors.values()] == [
        ("INT64", [2, 2]), ("FP32", [2, 2]), ("INT64", [2, 2, 2]), ("BOOL", [2])]
    assert tensors["item_ids"]["data"] == [7, 3, 4, -1]
    assert tensors["scores"]["data"][:1] == [0.5] and tensors["scores"]["data"][3] == 0.0
    assert tensors["scores"]["data"][1] == float(np.finfo(np.float32).min)  # JSON has no -inf
    assert tensors["sids"]["data"] == [1, 2, 1, 3, 5, 6, -1, -1] and tensors["personalized"]["data"] == [True, False]
    assert response["id"] == "r1" and response["model_version"] == "v7" and response["parameters"] == {"model": "generator"}
    json.dumps(response, allow_nan=False)
    rows = v2_predictions(response)
    assert [[i["item_id"] for i in r["items"]] for r in rows] == [[7, 3], [4]]
    assert rows[1]["items"][0]["sid"] == [5, 6] and [r["personalized"] for r in rows] == [True, False]


def test_v2_rows_read_back_from_flattened_tensors():
    """TorchServe's kservev2 envelope sends every output as a 1-D tensor."""
    results = [SearchResult(np.array([1, 2, 3]), np.zeros(3, np.float32), None, False)] * 2
    response = v2_response(results, "onevision")
    for t in response["outputs"]:
        t["shape"] = [len(t["data"])]
    rows = v2_predictions(response)
    assert [[i["item_id"] for i in r["items"]] for r in rows] == [[1, 2, 3]] * 2 and rows[0]["items"][0]["sid"] is None


@pytest.mark.parametrize("outputs", [[], [{"name": "item_ids", "datatype": "INT64", "shape": [3], "data": [1, 2, 3]}]])
def test_v2_response_without_its_tensors_names_what_is_missing(outputs):
    with pytest.raises(ValueError, match="lacks output tensors"):
        v2_predictions({"outputs": outputs})


@pytest.mark.parametrize(
    "inputs, fragment",
    [
        ([{"name": "user_id", "datatype": "INT64", "shape": [1], "data": [3]}], "missing image"),
        ([{"name": "image_b64", "datatype": "FP32", "shape": [1], "data": [1.0]}], "BYTES"),
        ([{"name": "image_b64", "datatype": "BYTES", "shape": [2], "data": ["abc"]}], "kservev2"),
        ([{"name": "image_b64", "datatype": "BYTES", "shape": [1], "data": ["x"]},
          {"name": "user_id", "datatype": "INT64", "shape": [2], "data": [1, 2]}], "user_id"),
        ([{"name": "image_b64", "datatype": "BYTES", "shape": [1], "data": ["x"]},
          {"name": "user_id", "datatype": "FP32", "shape": [1], "data": [1.0]}], "INT64"),
        ([{"name": "image_b64", "datatype": "BYTES", "shape": [1], "data": ["x"]},
          {"name": "colour", "datatype": "INT64", "shape": [1], "data": [1]}], "colour"),
        ([{"name": "image_b64", "shape": [1], "data": ["x"]}], "datatype"),
        ("not a list", "inputs"),
    ],
)
def test_malformed_v2_tensors_are_a_400(inputs, fragment):
    with pytest.raises(BadRequest) as info:
        v2_instances(inputs)
    assert info.value.status == 400 and fragment in info.value.reason


def test_v2_batch_over_the_limit_is_a_413():
    inputs = v2_request([png()] * 3)["inputs"]
    with pytest.raises(BadRequest) as info:
        v2_instances(inputs, ServiceLimits(max_batch=2))
    assert info.value.status == 413


@pytest.mark.parametrize("user_id", [2**63, -(2**63) - 1, 10**30])
def test_a_user_id_beyond_int64_is_a_400_naming_it(user_id):
    with pytest.raises(BadRequest) as info:
        service().predict([{"image_b64": b64(png()), "user_id": user_id}])
    assert info.value.status == 400 and "user_id" in info.value.reason and "64-bit" in info.value.reason
