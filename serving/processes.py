"""Start a real model server on 127.0.0.1 and stop it again: TorchServe (from a model store) or the
kserve.Model server (serving/kserve_main.py). Used by `onevision serve local|kserve`, the integration
tests and the throughput benchmark.

Each server runs in its own process group with a private temporary directory: TorchServe keeps its pid
file in ``tempfile.gettempdir()`` and unpacks archives under ``java.io.tmpdir``, so two servers (or two
users) never share them. Stopping signals the whole group (the Java frontend and its Python workers)
and waits until the ports are closed.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serving.ts_config import MarModel, TorchServeConfig, read_mar_model
from serving.ts_metrics import METRICS_FILE

HOST = "127.0.0.1"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only, never a proxy


class ServerStartError(RuntimeError):
    """The server exited or did not become ready; the message carries the end of its log."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


@dataclass
class HttpResponse:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)


def http(method: str, url: str, body: bytes | None = None, content_type: str = "application/json",
         timeout: float = 30.0) -> HttpResponse:
    """One HTTP request that returns the status instead of raising on 4xx/5xx."""
    request = urllib.request.Request(url, data=body, method=method,
                                     headers={"Content-Type": content_type} if body is not None else {})
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return HttpResponse(response.status, response.read(), dict(response.headers))
    except urllib.error.HTTPError as err:
        return HttpResponse(err.code, err.read(), dict(err.headers or {}))


def post_json(url: str, payload: Any, timeout: float = 30.0) -> HttpResponse:
    return http("POST", url, json.dumps(payload).encode(), timeout=timeout)


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    workdir: Path
    log_path: Path
    ports: tuple[int, ...]

    def log_tail(self, chars: int = 4000) -> str:
        text = ""
        for path in sorted({self.log_path, *self.workdir.glob("logs/*.log")}):
            if path.exists():
                text += f"--- {path.name}\n{path.read_text(errors='replace')[-chars:]}\n"
        return text

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM to the process group, SIGKILL after `timeout`, then wait for the ports to close."""
        pgid = self.process.pid  # start_new_session=True: the group id is our child's pid
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + timeout
        while any(port_open(p) for p in self.ports) and time.monotonic() < deadline:
            time.sleep(0.1)
        try:  # workers that ignored SIGTERM, or a frontend still holding a port
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.process.poll() is None:
            self.process.wait(timeout=10)


def _spawn(cmd: Sequence[str], workdir: Path, env: dict[str, str], ports: tuple[int, ...]) -> ServerProcess:
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(list(cmd), cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    return ServerProcess(process, workdir, log_path, ports)


def _private_env(workdir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    tmp = workdir / "tmp"
    tmp.mkdir(exist_ok=True)
    env = dict(os.environ)
    env.update({"TMPDIR": str(tmp), "TEMP": str(tmp), "LOG_LOCATION": str(workdir / "logs"),
                "METRICS_LOCATION": str(workdir / "logs")})
    for name in ("NO_PROXY", "no_proxy"):
        env[name] = ",".join(filter(None, [env.get(name), HOST, "localhost"]))
    env.pop("TS_CONFIG_FILE", None)  # would replace our --ts-config
    env.update(extra or {})
    return env


def _wait(server: ServerProcess, ready: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if not server.running():
            raise ServerStartError(f"{what} exited with code {server.process.returncode}:\n{server.log_tail()}")
        if ready():
            return
        if time.monotonic() > deadline:
            server.stop()
            raise ServerStartError(f"{what} was not ready within {timeout:.0f}s:\n{server.log_tail()}")
        time.sleep(0.2)


# ------------------------------------------------------------------------------------------ TorchServe
@dataclass
class TorchServeServer:
    server: ServerProcess
    config: TorchServeConfig
    inference_port: int
    management_port: int
    metrics_port: int

    @property
    def inference_url(self) -> str:
        return f"http://{HOST}:{self.inference_port}"

    @property
    def management_url(self) -> str:
        return f"http://{HOST}:{self.management_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{HOST}:{self.metrics_port}"

    @property
    def model_names(self) -> list[str]:
        return [m.name for m in self.config.models]

    def urls(self, model: str) -> dict[str, str]:
        return {
            "raw": f"{self.inference_url}/predictions/{model}",
            "v1": f"{self.inference_url}/v1/models/{model}:predict",
            "v2": f"{self.inference_url}/v2/models/{model}/infer",
        }

    def ready(self) -> bool:
        for name in self.model_names:
            try:
                response = http("GET", f"{self.management_url}/models/{name}", timeout=2)
            except (urllib.error.URLError, OSError):
                return False
            if response.status != 200:
                return False
            workers = [w for version in response.json() for w in version.get("workers", [])]
            if not any(w.get("status") == "READY" for w in workers):
                return False
        return True

    def stop(self) -> None:
        self.server.stop()


def local_torchserve_config(model_store: Path, models: Sequence[MarModel], envelope: str | None,
                            port: int | None = None, workers: int = 1, workdir: Path | None = None
                            ) -> tuple[TorchServeConfig, tuple[int, int, int]]:
    """A config for one loopback server written into `workdir`; `port` is the inference port (management/metrics:
    free ports)."""
    inference = port or free_port()
    management, metrics, grpc_inf, grpc_mgmt = (free_port() for _ in range(4))
    config = TorchServeConfig(
        models=tuple(MarModel(m.name, m.version, m.mar_name, min_workers=workers, max_workers=workers) for m in models),
        model_store=str(model_store),
        inference_address=f"http://{HOST}:{inference}",
        management_address=f"http://{HOST}:{management}",
        metrics_address=f"http://{HOST}:{metrics}",
        grpc_inference_port=grpc_inf,
        grpc_management_port=grpc_mgmt,
        envelope=envelope,
        extra={"grpc_inference_address": HOST, "grpc_management_address": HOST, "default_workers_per_model": str(workers)},
        metrics_config=str((workdir or Path.cwd()) / METRICS_FILE),
    )
    return config, (inference, management, metrics)


def start_torchserve(model_store: str | Path, envelope: str | None = "kservev2", port: int | None = None,
                     workdir: str | Path | None = None, timeout: float = 120.0, workers: int = 1,
                     extra_env: dict[str, str] | None = None) -> TorchServeServer:
    """TorchServe on 127.0.0.1 serving every .mar of `model_store` side by side (e.g. an A/B pair)."""
    model_store = Path(model_store).resolve()
    mars = sorted(model_store.glob("*.mar"))
    if not mars:
        raise FileNotFoundError(f"no .mar file in model store {model_store}")
    workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="onevision-torchserve-"))
    workdir.mkdir(parents=True, exist_ok=True)
    config, (inference, management, metrics) = local_torchserve_config(
        model_store, [read_mar_model(m) for m in mars], envelope, port, workers, workdir.resolve())
    config_path = config.write(workdir / "config.properties")
    env = _private_env(workdir, extra_env)
    env.pop("TS_SERVICE_ENVELOPE", None)
    if envelope not in (None, "body"):
        env["TS_SERVICE_ENVELOPE"] = envelope
    torchserve = Path(sys.executable).with_name("torchserve")
    cmd = [str(torchserve) if torchserve.exists() else "torchserve", "--start", "--foreground", "--ncs",
           "--disable-token-auth", "--model-store", str(model_store), "--ts-config", str(config_path)]
    ports = (inference, management, metrics, config.grpc_inference_port, config.grpc_management_port)
    server = TorchServeServer(_spawn(cmd, workdir, env, ports), config, inference, management, metrics)
    _wait(server.server, server.ready, timeout, f"TorchServe ({', '.join(server.model_names)})")
    return server


@contextmanager
def running_torchserve(model_store: str | Path, envelope: str | None = "kservev2", **kw: Any) -> Iterator[TorchServeServer]:
    server = start_torchserve(model_store, envelope, **kw)
    try:
        yield server
    finally:
        server.stop()


# ------------------------------------------------------------------------------------- kserve.Model
@dataclass
class KServeServer:
    server: ServerProcess
    model_name: str
    http_port: int

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    def urls(self, model: str | None = None) -> dict[str, str]:
        model = model or self.model_name
        return {"v1": f"{self.url}/v1/models/{model}:predict", "v2": f"{self.url}/v2/models/{model}/infer"}

    def ready(self) -> bool:
        try:
            return http("GET", f"{self.url}/v2/models/{self.model_name}/ready", timeout=2).status == 200
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        self.server.stop()


def start_kserve(model_dir: str | Path, model_name: str = "onevision", port: int | None = None,
                 workdir: str | Path | None = None, timeout: float = 120.0,
                 extra_args: Sequence[str] = ()) -> KServeServer:
    """`python -m serving.kserve_main` for `model_dir`. KServe binds 0.0.0.0; talk to it on 127.0.0.1."""
    workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="onevision-kserve-"))
    workdir.mkdir(parents=True, exist_ok=True)
    http_port = port or free_port()
    cmd = [sys.executable, "-m", "serving.kserve_main", "--model_name", model_name, "--model_dir", str(model_dir),
           "--http_port", str(http_port), "--enable_grpc", "false", *extra_args]
    env = _private_env(workdir)
    repo_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [repo_root, env.get("PYTHONPATH")]))
    server = KServeServer(_spawn(cmd, workdir, env, (http_port,)), model_name, http_port)
    _wait(server.server, server.ready, timeout, f"kserve model server ({model_name})")
    return server


@contextmanager
def running_kserve(model_dir: str | Path, model_name: str = "onevision", **kw: Any) -> Iterator[KServeServer]:
    server = start_kserve(model_dir, model_name, **kw)
    try:
        yield server
    finally:
        server.stop()
