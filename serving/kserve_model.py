"""A kserve.Model predictor over `onevision.service.search.SearchService` (KServe's custom-predictor route,
no TorchServe). One server answers both protocols: v1 ``POST /v1/models/<name>:predict`` and v2
``POST /v2/models/<name>/infer``.

`model_dir` may hold the bundle itself (bundle.json), or the TorchServe layout that `serving.archive`
writes (model-store/*.mar, whose bundle/ is unpacked once), so one storageUri serves either runtime;
an ``s3://`` URI is downloaded through `onevision.storage` first.
"""
from __future__ import annotations

import tempfile
import uuid
import zipfile
from pathlib import Path
from typing import Any

import kserve
import numpy as np
from fastapi import HTTPException
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from onevision.bundle import is_bundle, verify_bundle
from onevision.featurestore.live import FeastFeatures
from onevision.service.limits import ServiceLimits
from onevision.service.protocol import BadRequest
from onevision.service.search import SearchService
from serving.threads import configure_torch_threads

BUNDLE_SUBDIR = "bundle"


def _unpack_mar_bundle(mar: Path) -> Path:
    """The bundle inside a .mar, unpacked into a new private directory (mode 0700, never shared or reused, so
    nothing half-unpacked or planted by another user is ever read) and verified against its file manifest."""
    target = Path(tempfile.mkdtemp(prefix="onevision-mar-"))
    try:
        with zipfile.ZipFile(mar) as zf:
            members = [m for m in zf.namelist() if m.startswith(f"{BUNDLE_SUBDIR}/")]
            if not members:
                raise FileNotFoundError(f"{mar} carries no {BUNDLE_SUBDIR}/ directory; was it built by serving.archive?")
            zf.extractall(target, members)
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{mar} is not a readable model archive (truncated or corrupt: {exc})") from exc
    verify_bundle(target / BUNDLE_SUBDIR, require_manifest=False)
    return target / BUNDLE_SUBDIR


def resolve_bundle_dir(model_dir: str | Path, model_name: str | None = None) -> Path:
    """The bundle directory behind `model_dir` (bundle dir, dir with bundle/, or KServe/TorchServe layout)."""
    text = str(model_dir)
    if "://" in text:
        from onevision.storage import open_store

        store = open_store(text)
        store.require_published()  # never load a version whose upload did not finish
        model_dir = store.local_path()
    path = Path(model_dir)
    for candidate in (path, path / BUNDLE_SUBDIR):
        if is_bundle(candidate):
            return candidate
    store = path / "model-store" if (path / "model-store").is_dir() else path
    mars = sorted(store.glob("*.mar"))
    if model_name is not None and (store / f"{model_name}.mar").exists():
        mars = [store / f"{model_name}.mar"]
    if len(mars) == 1:
        return _unpack_mar_bundle(mars[0])
    found = f"{len(mars)} .mar files ({', '.join(m.name for m in mars)})" if mars else "nothing"
    raise FileNotFoundError(
        f"no model bundle under {model_dir}: expected bundle.json, bundle/bundle.json or one model-store/*.mar; found {found}"
    )


def _client_error(exc: BadRequest) -> Exception:
    # kserve maps InvalidInput to 400; it has no typed 413, so a too-large payload uses FastAPI's HTTPException.
    return InvalidInput(exc.reason) if exc.status == 400 else HTTPException(status_code=exc.status, detail=exc.reason)


def _tensor_data(tensor: Any) -> list[Any]:
    data = tensor.data
    if data is None:  # binary tensor extension / raw gRPC contents
        data = tensor.as_numpy().reshape(-1).tolist()
    elif isinstance(data, np.ndarray):
        data = data.reshape(-1).tolist()
    if tensor.datatype == "BYTES":
        data = [d.decode("ascii", errors="replace") if isinstance(d, (bytes, bytearray)) else d for d in data]
    return data


class OneVisionModel(kserve.Model):
    def __init__(self, name: str, model_dir: str | Path, limits: ServiceLimits = ServiceLimits(),
                 features: FeastFeatures | None = None):
        super().__init__(name)
        self.model_dir = model_dir
        self.limits = limits
        self.features = features  # None: the bundle's frozen user features
        self.service: SearchService | None = None

    def load(self) -> bool:
        configure_torch_threads()
        self.service = SearchService(resolve_bundle_dir(self.model_dir, self.name), self.limits, self.features)
        self.ready = True
        return self.ready

    def predict(self, payload: dict | InferRequest, headers: dict[str, str] | None = None) -> dict | InferResponse:
        if self.service is None:
            raise kserve.errors.ModelNotReady(self.name)
        try:
            if isinstance(payload, InferRequest):
                return self._predict_v2(payload)
            return self.service.predict_v1(payload)
        except BadRequest as exc:
            raise _client_error(exc) from exc

    def _predict_v2(self, request: InferRequest) -> InferResponse:
        inputs = [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape), "data": _tensor_data(t)}
                  for t in request.inputs]
        tensors = self.service.predict_tensors(inputs)
        return InferResponse(
            response_id=request.id or str(uuid.uuid4()), model_name=self.name, model_version=self.service.info.version,
            infer_outputs=[InferOutput(name=t.name, shape=list(t.shape), datatype=t.datatype, data=t.data.tolist())
                           for t in tensors],
            parameters={"model": self.service.info.kind},
        )


class FeatureCountsCollector:
    """Prometheus collector of a model's online user-feature reads: ``onevision_user_features_total{outcome=...}``
    on the server's /metrics (kserve serves prometheus_client's default registry)."""

    def __init__(self, model: OneVisionModel):
        self.model = model

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily

        counts = self.model.service.feature_counts() if self.model.service is not None else None
        family = CounterMetricFamily("onevision_user_features", "Online user-feature reads by outcome (users).",
                                     labels=["model", "outcome"])
        for outcome, n in (counts or {}).items():
            family.add_metric([self.model.name, outcome], n)
        yield family
