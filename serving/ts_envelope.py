"""Make TorchServe's KServe envelopes answer a body they cannot parse as the client's error (400), not 503.

TorchServe's `kserve` / `kservev2` envelopes parse the body before the handler runs and answer any failure
with 503 "Prediction failed": an empty body, non-JSON, `null`, a list, bad UTF-8, deep nesting, a form or
text body, `inputs: [1]`, a tensor without data. The TorchServe handler module may define only one class
(TorchServe loads the single class it finds), so these helpers live here.
"""
from __future__ import annotations

import json
import logging
from typing import Any

from ts.utils.util import PredictionException


class EnvelopeError:
    """What the guarded envelope hands `handle` when it could not parse the body (a client error)."""

    def __init__(self, reason: str):
        self.reason = reason


def _envelope_reason(envelope: str, exc: Exception) -> str:
    expected = ('{"inputs": [{"name", "datatype", "shape", "data"}, ...]} (Open Inference Protocol v2)'
                if envelope == "kservev2" else '{"instances": [...]} (KServe v1)')
    if isinstance(exc, UnicodeDecodeError):
        return f"request body is not UTF-8 text ({exc.reason} at byte {exc.start}); expected JSON {expected}"
    if isinstance(exc, json.JSONDecodeError):
        return f"request body is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); expected {expected}"
    if isinstance(exc, RecursionError):
        return f"request body is nested too deeply; expected {expected}"
    return f"request body does not have the shape {expected} ({type(exc).__name__}: {str(exc)[:200]})"


def guard_envelopes() -> None:
    """TorchServe's KServe envelopes parse the body before the handler runs and answer any failure with 503
    "Prediction failed" (an empty, non-JSON or wrongly shaped body is the client's error). Wrap their
    `parse_input` so that a failure reaches `handle` as an EnvelopeError, answered 400 naming the problem."""
    from ts.torch_handler.request_envelope import kserve, kservev2

    for name, cls in (("kserve", kserve.KServeEnvelope), ("kservev2", kservev2.KServev2Envelope)):
        original = cls.parse_input
        if getattr(original, "guarded", False):
            continue

        def parse_input(self: Any, data: Any, _original: Any = original, _name: str = name) -> Any:
            try:
                return _original(self, data)
            except Exception as exc:  # noqa: BLE001 - every parse failure is the body's fault
                return EnvelopeError(_envelope_reason(_name, exc))

        parse_input.guarded = True  # type: ignore[attr-defined]
        cls.parse_input = parse_input


class _ClientErrorFilter(logging.Filter):
    """TorchServe logs every PredictionException with its traceback at ERROR; a 4xx is the client's mistake
    and gets one INFO line from the handler instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (isinstance(exc, PredictionException) and 400 <= exc.error_code < 500)


def client_error_filter() -> logging.Filter:
    return _ClientErrorFilter()
