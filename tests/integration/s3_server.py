"""A real S3 endpoint for integration tests: moto's server as a subprocess on 127.0.0.1.

Reuse from any test module under tests/integration/ (that directory is on sys.path under pytest's
default import mode)::

    from s3_server import moto_s3, s3_env       # moto_s3: a module-scoped fixture

    def test_x(moto_s3, monkeypatch):
        moto_s3.create_bucket("models")
        s3_env(monkeypatch, moto_s3.endpoint_url)  # AWS_* variables for the code under test
        ...

or, outside fixtures, ``with running_s3_server() as server: ...``. Both give an `S3Server`;
`S3Server.endpoint_url` is the URL (a `str`). The server accepts any credentials until `enable_iam_auth()`
(or `with server.iam_auth() as creds:`) switches on moto's IAM check (see moto.core.authorization).
"""
from __future__ import annotations

import functools
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HOST = "127.0.0.1"
REGION = "us-east-1"
# Credentials any test may use while IAM auth is off (moto accepts anything then).
TEST_ACCESS_KEY_ID = "testing"
TEST_SECRET_ACCESS_KEY = "testing"

_AWS_ENV_VARS = (
    "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
)


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str

    def client(self, service: str = "s3", credentials: Credentials | None = None) -> Any:
        """A boto3 client bound to this server only (ignores the caller's AWS environment)."""
        creds = credentials or Credentials(TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY)
        return _client(self.endpoint_url, service, creds)

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def reset(self) -> None:
        """Drop every bucket, IAM user and key (moto's /moto-api/reset)."""
        self._post("/moto-api/reset", b"")

    def enable_iam_auth(self) -> Credentials:
        """Create an IAM user allowed s3:*, then make the server check every request's signature.

        Returns the user's credentials; any other key is rejected with InvalidAccessKeyId, a wrong secret
        with SignatureDoesNotMatch. Call `disable_iam_auth()` (or use `iam_auth()`) to switch it off.
        """
        iam = self.client("iam")
        user = f"onevision-test-{time.monotonic_ns()}"
        iam.create_user(UserName=user)
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        iam.put_user_policy(UserName=user, PolicyName="s3-all", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=user)["AccessKey"]
        self._post("/moto-api/reset-auth", b"0")
        return Credentials(key["AccessKeyId"], key["SecretAccessKey"])

    def disable_iam_auth(self) -> None:
        self._post("/moto-api/reset-auth", b"inf")

    @contextmanager
    def iam_auth(self) -> Iterator[Credentials]:
        creds = self.enable_iam_auth()
        try:
            yield creds
        finally:
            self.disable_iam_auth()

    def _post(self, path: str, body: bytes) -> None:
        request = urllib.request.Request(
            self.endpoint_url + path, data=body, method="POST", headers={"Content-Type": "text/plain"}
        )
        with _OPENER.open(request, timeout=10) as response:
            if response.status != 200:
                raise RuntimeError(f"moto server {self.endpoint_url}{path} answered HTTP {response.status}")


@functools.lru_cache(maxsize=32)
def _client(endpoint_url: str, service: str, credentials: Credentials) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, proxies={}),
    )


def s3_env(
    monkeypatch: pytest.MonkeyPatch, endpoint_url: str, credentials: Credentials | None = None
) -> None:
    """Point boto3 in this process at the server: clear the AWS_* variables, then set the standard ones.

    The caller's ~/.aws files and the EC2 metadata service are switched off, so no credential lookup can
    leave 127.0.0.1.
    """
    for name in _AWS_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    creds = credentials or Credentials(TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("NO_PROXY", "no_proxy"):  # never send test traffic through a configured HTTP proxy
        monkeypatch.setenv(name, ",".join(filter(None, [os.environ.get(name), HOST, "localhost"])))
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint_url)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", creds.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", creds.secret_access_key)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


# No proxy, whatever HTTP_PROXY says: the server is on 127.0.0.1.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _answers(url: str) -> bool:
    try:
        with _OPENER.open(url + "/moto-api/data.json", timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def _start(port: int, log_path: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.pop("INITIAL_NO_AUTH_ACTION_COUNT", None)  # auth starts off; enable_iam_auth() turns it on
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
        )


@contextmanager
def running_s3_server(startup_timeout_s: float = 30.0, attempts: int = 3) -> Iterator[S3Server]:
    """Start `python -m moto.server` on a free 127.0.0.1 port, wait until it answers, always stop it."""
    with tempfile.TemporaryDirectory(prefix="moto-s3-") as tmp:
        log_path = Path(tmp) / "moto.log"
        for attempt in range(1, attempts + 1):
            port = free_port()
            url = f"http://{HOST}:{port}"
            process = _start(port, log_path)
            try:
                deadline = time.monotonic() + startup_timeout_s
                while process.poll() is None and not _answers(url):
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"moto S3 server on {url} did not answer within {startup_timeout_s:.0f}s; "
                            f"log:\n{log_path.read_text(errors='replace')[-2000:]}"
                        )
                    time.sleep(0.05)
                if process.poll() is not None:
                    if attempt == attempts:  # e.g. the port was taken between picking and binding
                        raise RuntimeError(
                            f"moto S3 server exited with code {process.returncode} on {url}; "
                            f"log:\n{log_path.read_text(errors='replace')[-2000:]}"
                        )
                    continue
                yield S3Server(url)
                return
            finally:
                _stop(process)


@pytest.fixture(scope="module")
def moto_s3() -> Iterator[S3Server]:
    """One server per test module: `from s3_server import moto_s3` and take `moto_s3` as an argument."""
    with running_s3_server() as server:
        yield server
