"""TorchServe's config.properties, as KServe's PyTorch runtime reads it.

KServe starts ``torchserve --start --model-store=/mnt/models/model-store
--ts-config=/mnt/models/config/config.properties`` and sets ``TS_SERVICE_ENVELOPE`` (kserve | kservev2) from
the InferenceService's protocolVersion; ``enable_envvars_config=true`` lets that variable override the
``service_envelope`` written here. Its wrapper reads ``inference_address``, ``management_address``,
``grpc_inference_port``, ``model_store`` and the model names of ``model_snapshot``, and polls the
management API for READY workers, which token authorisation (on by default since TorchServe 0.11)
would refuse. ``model_snapshot`` is what TorchServe restores at start (it wins over ``load_models``).
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from onevision.service.limits import ServiceLimits
from serving.ts_metrics import METRICS_FILE, write_metrics_config

ENVELOPES = ("kserve", "kservev2", "body")
KSERVE_MODEL_STORE = "/mnt/models/model-store"
KSERVE_METRICS_CONFIG = f"/mnt/models/config/{METRICS_FILE}"  # written beside config.properties


@dataclass(frozen=True)
class MarModel:
    """One model of the snapshot: the .mar file name and the name/version it registers under."""

    name: str
    version: str
    mar_name: str
    min_workers: int = 1
    max_workers: int = 1
    batch_size: int = 1  # KServe's envelopes answer only the first request of a TorchServe batch
    max_batch_delay_ms: int = 10
    response_timeout_s: int = 120


@dataclass(frozen=True)
class TorchServeConfig:
    models: tuple[MarModel, ...]
    model_store: str = KSERVE_MODEL_STORE
    inference_address: str = "http://0.0.0.0:8085"
    # Management (register/scale/unregister models) answers only inside the pod: on the inference port and
    # 0.0.0.0 anyone reaching the Service could `PUT /models/<m>?min_worker=...` (token auth is off, see above).
    management_address: str = "http://127.0.0.1:8081"
    metrics_address: str = "http://0.0.0.0:8082"
    grpc_inference_port: int = 7070
    grpc_management_port: int = 7071
    envelope: str | None = "kservev2"  # None/"body": no envelope (raw bodies on /predictions/<name>)
    number_of_netty_threads: int = 4
    job_queue_size: int = 100
    extra: dict[str, str] = field(default_factory=dict)
    metrics_config: str = KSERVE_METRICS_CONFIG  # where TorchServe finds the metrics.yaml `write` puts beside it

    def __post_init__(self) -> None:
        if not self.models:
            raise ValueError("a TorchServe config needs at least one model")
        if self.envelope is not None and self.envelope not in ENVELOPES:
            raise ValueError(f"envelope must be one of {ENVELOPES} or None, got {self.envelope!r}")
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError(f"model names must be distinct, got {names}")

    def snapshot(self) -> dict:
        return {
            "name": "startup.cfg",
            "modelCount": len(self.models),
            "models": {
                m.name: {
                    m.version: {
                        "defaultVersion": True, "marName": m.mar_name, "minWorkers": m.min_workers,
                        "maxWorkers": m.max_workers, "batchSize": m.batch_size,
                        "maxBatchDelay": m.max_batch_delay_ms, "responseTimeout": m.response_timeout_s,
                    }
                }
                for m in self.models
            },
        }

    def render(self) -> str:
        props = {
            "inference_address": self.inference_address,
            "management_address": self.management_address,
            "metrics_address": self.metrics_address,
            "grpc_inference_port": str(self.grpc_inference_port),
            "grpc_management_port": str(self.grpc_management_port),
            "enable_metrics_api": "true",
            "metrics_mode": "prometheus",
            "metrics_config": self.metrics_config,
            "number_of_netty_threads": str(self.number_of_netty_threads),
            "job_queue_size": str(self.job_queue_size),
            "enable_envvars_config": "true",
            "install_py_dep_per_model": "false",
            "disable_token_authorization": "true",
            "model_store": self.model_store,
            "load_models": ",".join(f"{m.name}={m.mar_name}" for m in self.models),
            "model_snapshot": json.dumps(self.snapshot(), separators=(",", ":")),
            "max_request_size": str(ServiceLimits().max_request_bytes),
        }
        if self.envelope not in (None, "body"):
            props["service_envelope"] = self.envelope
        props.update(self.extra)
        lines = ["# TorchServe config for KServe's PyTorch runtime; written by `onevision serve build`."]
        lines += [f"{k}={v}" for k, v in props.items()]
        return "\n".join(lines) + "\n"

    def write(self, path: str | Path) -> Path:
        """config.properties at `path` and the metrics config beside it."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.render())
        write_metrics_config(path.parent / METRICS_FILE)
        return path


def read_mar_model(mar_path: str | Path, **overrides) -> MarModel:
    """Name and version a .mar registers under, from its MAR-INF/MANIFEST.json."""
    mar_path = Path(mar_path)
    try:
        with zipfile.ZipFile(mar_path) as zf:
            manifest = json.loads(zf.read("MAR-INF/MANIFEST.json"))
    except (zipfile.BadZipFile, KeyError, FileNotFoundError) as exc:
        raise ValueError(f"{mar_path} is not a model archive with MAR-INF/MANIFEST.json ({exc})") from exc
    model = manifest["model"]
    return MarModel(name=model["modelName"], version=str(model.get("modelVersion", "1.0")), mar_name=mar_path.name,
                    **overrides)
