"""TorchServe custom handler: a thin adapter over `onevision.service.search.SearchService`.

The .mar carries this file and the model bundle under ``bundle/`` (see serving/archive.py); TorchServe
unpacks it into ``context.system_properties["model_dir"]``. What `handle` receives depends on the server's
service envelope (``TS_SERVICE_ENVELOPE`` / ``service_envelope``), fixed per server:

- ``kserve`` (v1): the body's ``instances`` list (None when the body has none); the envelope wraps our
  list of responses into ``{"predictions": [...]}``.
- ``kservev2``: the body's input tensors, except that a BYTES tensor's data is cut to its first element
  (so a batch of B images must come as shape [1, B] with nested data). The envelope names each returned
  output after the input at the same position and reads those names from ``context.input_names``, so we
  set that to the typed outputs' names (``item_ids``, ``scores``, ``sids``, ``personalized``) and return
  their numpy arrays. The envelope flattens every output to one dimension and cannot send response
  parameters: `onevision.service.client.v2_predictions` reads the rows back from the flat tensors.
- none: one row per HTTP request, ``{"body": ...}`` holding raw image bytes (``curl --data-binary
  @photo.png``) or parsed JSON (one instance, a v1 body or a v2 body).

A 400 is raised as ``PredictionException(message, 400)``, which TorchServe answers with
``{"code": 400, "type": ..., "message": ...}``. A 413 cannot take that route: the frontend's
`RestJob.sendError` rewrites a worker's 413 into 507, so it is answered as a normal response whose
status is set with ``context.set_response_status(413, ...)`` (the envelope still wraps its body). With no
envelope and several requests in one TorchServe batch, each bad row gets its own status.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any

from ts.torch_handler.base_handler import BaseHandler
from ts.utils.util import PredictionException

from onevision.featurestore.live import FeastFeatures
from onevision.service.limits import ServiceLimits
from onevision.service.protocol import BadRequest
from onevision.service.search import SearchService
from serving.threads import configure_torch_threads
from serving.ts_envelope import EnvelopeError, client_error_filter, guard_envelopes
from serving.ts_metrics import FEATURE_METRIC

log = logging.getLogger(__name__)


BUNDLE_SUBDIR = "bundle"
_PHRASES = {400: "Bad Request", 413: "Payload Too Large"}
RAW_ROW_KEYS = frozenset({"body", "data"})


def _error_body(exc: BadRequest) -> dict[str, Any]:
    """The shape of TorchServe's own error bodies."""
    return {"code": exc.status, "type": "BadRequest", "message": exc.reason}


def limits_from_env(env: Any = os.environ) -> ServiceLimits:
    """ServiceLimits with each field overridable as ONEVISION_<FIELD> (e.g. ONEVISION_MAX_BATCH=32)."""
    defaults = ServiceLimits()
    values = {}
    for f in dataclasses.fields(ServiceLimits):
        raw = env.get(f"ONEVISION_{f.name.upper()}")
        values[f.name] = getattr(defaults, f.name) if raw in (None, "") else int(raw)
    return ServiceLimits(**values)


class OneVisionHandler(BaseHandler):
    def initialize(self, context: Any) -> None:
        guard_envelopes()
        logging.getLogger("ts.service").addFilter(client_error_filter())
        threads = configure_torch_threads()
        model_dir = Path(context.system_properties["model_dir"])
        bundle_dir = model_dir / BUNDLE_SUBDIR
        features = FeastFeatures.from_env(os.environ)  # ONEVISION_FEATURE_REPO unset: the bundle's snapshot
        self.service = SearchService(bundle_dir, limits_from_env(), features)
        self._reported: dict[str, int] = {}
        self.context = context
        self.manifest = context.manifest
        self.initialized = True
        log.info("onevision %s bundle %s loaded from %s (%d torch threads; user features: %s)", self.service.info.kind,
                 self.service.info.version, bundle_dir, threads, features.repo_dir if features else "snapshot")

    def report_feature_metrics(self, context: Any) -> None:
        """Add what the online feature reads counted since the last report to TorchServe's custom counters."""
        counts = self.service.feature_counts()
        metrics = getattr(context, "metrics", None)
        if counts is None or metrics is None:
            return
        for name, total in counts.items():
            delta = total - self._reported.get(name, 0)  # initialize() sets _reported with the service
            if delta > 0:
                try:
                    # its own dimensions list: TorchServe appends the defaults to the one it is given
                    metrics.add_counter(FEATURE_METRIC.format(name.capitalize()), delta, dimensions=[])
                except Exception as exc:  # noqa: BLE001 - a metric never fails a request
                    log.warning("could not report %s: %s", name, exc)
                    return
                self._reported[name] = total

    def handle(self, data: Any, context: Any) -> list[Any]:
        self.context = context
        try:
            return self._handle(data, context)
        finally:
            self.report_feature_metrics(context)

    def _handle(self, data: Any, context: Any) -> list[Any]:
        v2 = getattr(context, "input_names", None) is not None  # set by the kservev2 envelope
        try:
            if isinstance(data, EnvelopeError):
                raise BadRequest(data.reason)
            if v2:
                return self._handle_v2(data, context)
            if data is None:  # the kserve envelope found no "instances"
                raise BadRequest('request body: expected {"instances": [...]} (KServe v1)')
            if isinstance(data, list) and data and all(isinstance(r, dict) and set(r) <= RAW_ROW_KEYS for r in data):
                return self._handle_raw(data, context)
            return self.service.predict(data)  # the kserve envelope: a list of instances
        except BadRequest as exc:
            log.info("client error %d: %s", exc.status, exc.reason)
            if exc.status != 413:
                raise PredictionException(exc.reason, exc.status) from exc
            context.set_all_response_status(exc.status, "Payload Too Large")
            body = _error_body(exc)
            if v2:  # the envelope names the output after input_names[0]
                context.input_names = ["error"]
                return [[json.dumps(body)]]
            return [body]

    def _handle_v2(self, data: Any, context: Any) -> list[Any]:
        tensors = self.service.predict_tensors(data)
        context.input_names = [t.name for t in tensors]  # the envelope names output i after input_names[i]
        return [t.data.reshape(t.shape) for t in tensors]  # it flattens each to 1-D and takes the datatype from the numpy dtype

    def _handle_raw(self, rows: list[dict[str, Any]], context: Any) -> list[Any]:
        if len(rows) == 1:
            return [self._answer_raw(rows[0], context)]
        out: list[Any] = []
        for idx, row in enumerate(rows):
            try:
                out.append(self._answer_raw(row, context, idx))
            except BadRequest as exc:
                context.set_response_status(code=exc.status, phrase=_PHRASES[exc.status], idx=idx)
                out.append(_error_body(exc))
        return out

    def _answer_raw(self, row: dict[str, Any], context: Any, idx: int = 0) -> Any:
        body = row.get("body") if row.get("body") is not None else row.get("data")
        if isinstance(body, (bytes, bytearray)):
            return self.service.predict([{"image": bytes(body)}])[0]
        if isinstance(body, dict) and "instances" in body:
            return self.service.predict_v1(body)
        if isinstance(body, dict) and "inputs" in body:
            request_id = body.get("id") or context.get_request_id(idx)
            return self.service.predict_v2(body, context.model_name, request_id)
        if isinstance(body, dict):
            return self.service.predict([body])[0]
        raise BadRequest(f"request body: expected image bytes or a JSON object, got {type(body).__name__}")
