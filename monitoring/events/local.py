"""Run the sink as a child process on 127.0.0.1 (integration tests, bench/event_sink_throughput.py)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HOST = "127.0.0.1"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def start_sink(store: str, *flags: str, port: int | None = None, log_path: Path | None = None,
               env: dict[str, str] | None = None, startup_timeout_s: float = 30.0) -> tuple[str, subprocess.Popen]:
    """`python -m monitoring.events serve` on a free port; (base URL, process) once /healthz answers."""
    port = port or free_port()
    url = f"http://{HOST}:{port}"
    log = log_path.open("ab") if log_path else subprocess.DEVNULL
    repo = str(Path(__file__).resolve().parents[2])
    child_env = {**os.environ, **(env or {})}
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [repo, child_env.get("PYTHONPATH")]))
    process = subprocess.Popen([sys.executable, "-m", "monitoring.events", "serve", "--store", store, "--host", HOST,
                                "--port", str(port), *flags], stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, env=child_env)
    deadline = time.monotonic() + startup_timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"event sink exited with {process.returncode} before answering on {url}")
        try:
            with _OPENER.open(url + "/healthz", timeout=1) as response:
                if response.status == 200:
                    return url, process
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            stop_sink(process)
            raise RuntimeError(f"event sink on {url} did not answer within {startup_timeout_s:.0f}s")
        time.sleep(0.1)


def stop_sink(process: subprocess.Popen, timeout_s: float = 30.0) -> int:
    """SIGTERM (the sink flushes), then SIGKILL if it does not exit in time; the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    return process.returncode


@contextmanager
def running_sink(store: str, *flags: str, **kwargs) -> Iterator[tuple[str, subprocess.Popen]]:
    url, process = start_sink(store, *flags, **kwargs)
    try:
        yield url, process
    finally:
        stop_sink(process)
