"""Client side of the inference protocol: responses become slates, malformed ones raise ProtocolError."""
from __future__ import annotations

import numpy as np
import pytest

from monitoring.protocol import ProtocolError, decode_response, encode_request


def test_a_v1_response_gives_items_and_the_top_sid_prefix() -> None:
    payload = {"predictions": [{"items": [{"item_id": 3, "sid": [12, 200, 7], "score": -0.4},
                                          {"item_id": 5, "sid": [12, 1, 2], "score": -0.9}], "personalized": True}]}
    (row,) = decode_response("v1", payload)
    assert row.item_ids == [3, 5] and row.sid_prefix == 12 and row.personalized is True


def test_a_v2_response_rows_come_from_typed_tensors() -> None:
    payload = {"outputs": [
        {"name": "item_ids", "datatype": "INT64", "shape": [2, 2], "data": [1, 4, -1, -1]},
        {"name": "scores", "datatype": "FP32", "shape": [2, 2], "data": [0.1, 0.0, 0.0, 0.0]},
        {"name": "sids", "datatype": "INT64", "shape": [2, 2, 2], "data": [9, 1, 9, 2, -1, -1, -1, -1]},
        {"name": "personalized", "datatype": "BOOL", "shape": [2], "data": [True, False]},
    ]}
    decoded = decode_response("v2", payload)
    assert [r.item_ids for r in decoded] == [[1, 4], []] and [r.sid_prefix for r in decoded] == [9, -1]
    assert [r.personalized for r in decoded] == [True, False]


def test_a_v2_request_carries_images_users_and_k() -> None:
    body = encode_request("v2", [b"png-a", b"png-b"], np.array([4, -1]), 10)
    tensors = {t["name"]: t for t in body["inputs"]}
    assert tensors["image_b64"]["shape"] == [2] and tensors["user_id"]["data"] == [4, -1]
    assert tensors["top_k"]["data"] == [10]


@pytest.mark.parametrize("payload", [{"predictions": [{"no_items": 1}]}, {"predictions": [{"items": [{"id": 3}]}]},
                                     {"outputs": []}])
def test_malformed_responses_raise_protocol_error(payload: dict) -> None:
    protocol = "v2" if "outputs" in payload else "v1"
    with pytest.raises(ProtocolError):
        decode_response(protocol, payload)
