"""Artifact store: read and write artifacts under a local directory or an ``s3://bucket/prefix`` URI.

Keys are ``/``-separated paths relative to the store (``"vrq/sids.parquet"``). S3 settings come from the
standard AWS environment, so the same code talks to AWS, MinIO or a local test server:

- endpoint: ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL`` (read by botocore itself, >= 1.31); when one is
  set, path-style addressing is used (``http://minio:9000/bucket/key``), which MinIO needs.
- region: ``AWS_REGION`` (read here; botocore alone ignores it) or ``AWS_DEFAULT_REGION`` (botocore).
- credentials: ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, or any other
  source of botocore's default chain (profile, web identity, instance role).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlparse

log = logging.getLogger(__name__)

ENDPOINT_ENV_VARS = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
ENDPOINT_ENV_HINT = " or ".join(ENDPOINT_ENV_VARS)
CREDENTIAL_ENV_HINT = "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN if you use temporary keys)"
CACHE_DIR_ENV_VAR = "ONEVISION_CACHE_DIR"

_AUTH_ERROR_CODES = frozenset({
    "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken",
    "TokenRefreshRequired", "AllAccessDisabled", "AccountProblem", "InvalidSecurity", "403", "Forbidden",
})
_MISSING_KEY_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


PUBLISHED_MARKER = "_PUBLISHED.json"  # written last by upload_dir: the prefix's upload finished


class ArtifactStoreError(Exception):
    """The store could not complete an operation (unreachable endpoint, missing bucket, rejected request)."""


class ArtifactNotFoundError(ArtifactStoreError, FileNotFoundError):
    """No artifact at the URI named in the message."""


class ArtifactStoreAuthError(ArtifactStoreError, PermissionError):
    """The S3 endpoint rejected the credentials or denied access."""


class BucketNotFoundError(ArtifactStoreError):
    """The bucket of an ``s3://`` URI does not exist at the endpoint."""


def clean_key(key: str, allow_root: bool = False) -> str:
    """Normalise a key to ``a/b/c``; reject absolute-looking escapes (``..``) and empty parts."""
    if not isinstance(key, str):
        raise TypeError(f"artifact key must be a str, got {type(key).__name__}: {key!r}")
    stripped = key.strip("/")
    if not stripped:
        if allow_root:
            return ""
        raise ValueError(f"artifact key {key!r} is empty; expected a path such as 'vrq/sids.parquet'")
    parts = stripped.split("/")
    if any(part in ("", ".", "..") for part in parts) or "\\" in stripped:
        raise ValueError(
            f"artifact key {key!r} is invalid: expected '/'-separated names without '.', '..', "
            "backslashes or empty parts"
        )
    return stripped


def _join_keys(*parts: str) -> str:
    return "/".join(p for p in parts if p)


def _under(keys: list[str], prefix: str) -> list[str]:
    """Keys equal to ``prefix`` or inside it as a directory (``vrq`` matches ``vrq/x``, not ``vrq_report``)."""
    if not prefix:
        return sorted(keys)
    return sorted(k for k in keys if k == prefix or k.startswith(prefix + "/"))


class ArtifactStore(ABC):
    """One interface for a local directory and an S3 prefix. Subclasses implement the byte/file primitives."""

    @property
    @abstractmethod
    def uri(self) -> str:
        """The store's root: an absolute path for a local store, ``s3://bucket/prefix`` for S3."""

    @abstractmethod
    def join(self, *parts: str) -> ArtifactStore:
        """A store rooted at a sub-prefix of this one."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove one artifact; nothing happens when it does not exist."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes: ...

    @abstractmethod
    def upload_file(self, local_path: str | Path, key: str) -> None: ...

    @abstractmethod
    def download_file(self, key: str, local_path: str | Path) -> Path: ...

    @abstractmethod
    def exists(self, key: str = "") -> bool:
        """True if ``key`` is an artifact, or a prefix ("directory") holding at least one."""

    @abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """Sorted keys (relative to this store) equal to ``prefix`` or under ``prefix/``; all when empty."""

    @abstractmethod
    def local_path(self, key: str = "") -> Path:
        """A local file or directory with the artifact at ``key`` (S3: downloaded into a cache first)."""

    def uri_of(self, key: str = "") -> str:
        return self.join(key).uri if clean_key(key, allow_root=True) else self.uri

    def put_text(self, key: str, text: str) -> None:
        self.put_bytes(key, text.encode("utf-8"))

    def get_text(self, key: str) -> str:
        return self.get_bytes(key).decode("utf-8")

    def put_json(self, key: str, obj: Any, indent: int | None = 2) -> None:
        self.put_text(key, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")

    def get_json(self, key: str) -> Any:
        return json.loads(self.get_text(key))

    def upload_dir(self, local_dir: str | Path, key_prefix: str = "") -> list[str]:
        """Upload every file under ``local_dir`` to ``key_prefix/<relative path>`` and publish it: the prefix's
        marker (PUBLISHED_MARKER, the list of files) is removed first and written last, so a crash midway never
        leaves a prefix that `require_published` accepts. Returns the keys written (marker excluded)."""
        local_dir = Path(local_dir)
        if not local_dir.is_dir():
            raise NotADirectoryError(f"upload_dir expects a directory, {local_dir} is not one")
        prefix = clean_key(key_prefix, allow_root=True)
        marker = _join_keys(prefix, PUBLISHED_MARKER)
        self.delete(marker)
        keys, sizes = [], {}
        for path in sorted(p for p in local_dir.rglob("*") if p.is_file() and p.name != PUBLISHED_MARKER):
            relative = path.relative_to(local_dir).as_posix()
            key = _join_keys(prefix, relative)
            self.upload_file(path, key)
            keys.append(key)
            sizes[relative] = path.stat().st_size
        self.put_json(marker, {"files": sizes})
        return keys

    def require_published(self, key_prefix: str = "") -> dict[str, int]:
        """The files of a completely uploaded prefix (relative path -> size); ArtifactNotFoundError naming the
        prefix when its upload never finished (no marker) or a listed file is gone."""
        prefix = clean_key(key_prefix, allow_root=True)
        marker = _join_keys(prefix, PUBLISHED_MARKER)
        try:
            files = self.get_json(marker)["files"]
        except ArtifactNotFoundError:
            raise ArtifactNotFoundError(
                f"{self.uri_of(prefix)} is not published: it has no {PUBLISHED_MARKER}, so its upload did not finish "
                "(or it was not uploaded by onevision); upload it again with `onevision serve build --upload-to`"
            ) from None
        present = {k[len(prefix):].lstrip("/") for k in self.list(prefix)}
        missing = sorted(set(files) - present)
        if missing:
            raise ArtifactNotFoundError(f"{self.uri_of(prefix)} lacks published files {missing[:5]}")
        return dict(files)

    def download_dir(self, key_prefix: str, local_dir: str | Path) -> Path:
        """Download every artifact under ``key_prefix`` into ``local_dir`` (paths relative to the prefix; the
        publication marker stays behind)."""
        prefix = clean_key(key_prefix, allow_root=True)
        local_dir = Path(local_dir)
        keys = [k for k in self.list(prefix) if k != prefix and k.rsplit("/", 1)[-1] != PUBLISHED_MARKER]
        if not keys:
            raise ArtifactNotFoundError(f"no artifacts under {self.uri_of(prefix)}")
        for key in keys:
            self.download_file(key, local_dir / key[len(prefix):].lstrip("/"))
        return local_dir


def _default_file_mode() -> int:
    """The mode `open()` gives a new file under the process umask (0644 under the usual 022)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _write_atomic(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write through a temporary file beside ``path`` so readers never see half a file. The file gets the
    mode any new file gets (`_default_file_mode`), not mkstemp's private 0600: one policy for every artifact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _default_file_mode())
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class LocalStore(ArtifactStore):
    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().absolute()

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    @property
    def uri(self) -> str:
        return str(self.root)

    def join(self, *parts: str) -> LocalStore:
        return LocalStore(self._path(_join_keys(*(clean_key(p, allow_root=True) for p in parts))))

    def _path(self, key: str) -> Path:
        key = clean_key(key, allow_root=True)
        return self.root / key if key else self.root

    def _existing_file(self, key: str) -> Path:
        path = self._path(clean_key(key))
        if not path.is_file():
            raise ArtifactNotFoundError(f"no artifact at {path}")
        return path

    def put_bytes(self, key: str, data: bytes) -> None:
        _write_atomic(self._path(clean_key(key)), lambda fh: fh.write(data))

    def delete(self, key: str) -> None:
        self._path(clean_key(key)).unlink(missing_ok=True)

    def get_bytes(self, key: str) -> bytes:
        return self._existing_file(key).read_bytes()

    def upload_file(self, local_path: str | Path, key: str) -> None:
        source = Path(local_path)
        if not source.is_file():
            raise FileNotFoundError(f"upload_file: local file {source} does not exist")
        target = self._path(clean_key(key))
        if target.exists() and os.path.samefile(source, target):
            return
        with source.open("rb") as src:
            _write_atomic(target, lambda fh: shutil.copyfileobj(src, fh))

    def download_file(self, key: str, local_path: str | Path) -> Path:
        source = self._existing_file(key)
        target = Path(local_path)
        if not (target.exists() and os.path.samefile(source, target)):
            with source.open("rb") as src:
                _write_atomic(target, lambda fh: shutil.copyfileobj(src, fh))
        return target

    def exists(self, key: str = "") -> bool:
        path = self._path(key)
        return path.is_file() or (path.is_dir() and any(p.is_file() for p in path.rglob("*")))

    def list(self, prefix: str = "") -> list[str]:
        prefix = clean_key(prefix, allow_root=True)
        path = self._path(prefix)
        if path.is_file():
            return [prefix]
        if not path.is_dir():
            return []
        return sorted(p.relative_to(self.root).as_posix() for p in path.rglob("*") if p.is_file())

    def local_path(self, key: str = "") -> Path:
        path = self._path(key)
        if not self.exists(key):
            raise ArtifactNotFoundError(f"no artifact at {path}")
        return path


class _S3Client:
    """The boto3 client of one store tree, created on first use (boto3 is imported only then)."""

    def __init__(self) -> None:
        self._session: Any = None
        self._client: Any = None

    def get(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            config = Config(s3={"addressing_style": "path"}) if configured_endpoint() else None
            region = os.environ.get("AWS_REGION") or None  # None: botocore reads AWS_DEFAULT_REGION / config
            self._session = boto3.session.Session(region_name=region)
            self._client = self._session.client("s3", config=config)
        return self._client

    def credential_summary(self) -> str:
        """Where the credentials came from and the access key's last 4 characters; never the secret."""
        self.get()
        creds = self._session.get_credentials()
        if creds is None:
            return "no credentials"
        source = getattr(creds, "method", None) or "an unknown source"
        return f"access key ****{(creds.access_key or '')[-4:]} from {source}"


def configured_endpoint() -> str | None:
    """The S3 endpoint URL from the environment, as botocore resolves it (None: AWS's own)."""
    if os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
        return None
    return next((os.environ[v] for v in ENDPOINT_ENV_VARS if os.environ.get(v)), None)


class S3Store(ArtifactStore):
    def __init__(self, bucket: str, prefix: str = "", cache_dir: str | Path | None = None,
                 _client: _S3Client | None = None):
        if not bucket:
            raise ValueError("S3 URI has no bucket; expected s3://bucket/prefix")
        self.bucket = bucket
        self.prefix = clean_key(prefix, allow_root=True)
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self._client = _client or _S3Client()

    def __repr__(self) -> str:
        return f"S3Store({self.uri!r})"

    @property
    def uri(self) -> str:
        return f"s3://{_join_keys(self.bucket, self.prefix)}"

    def join(self, *parts: str) -> S3Store:
        prefix = _join_keys(self.prefix, *(clean_key(p, allow_root=True) for p in parts))
        return S3Store(self.bucket, prefix, self.cache_dir, self._client)

    def _key(self, key: str, allow_root: bool = False) -> str:
        return _join_keys(self.prefix, clean_key(key, allow_root=allow_root))

    def _call(self, key: str, operation: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        client = self._client.get()
        try:
            return getattr(client, operation)(**kwargs)
        except ClientError as err:
            raise self._translate(err, key) from err
        except BotoCoreError as err:
            raise self._translate_botocore(err) from err

    def _endpoint(self) -> str:
        return self._client.get().meta.endpoint_url

    def _translate(self, err: Any, key: str) -> ArtifactStoreError:
        code = str(err.response.get("Error", {}).get("Code", ""))
        uri = self.uri_of(key)
        if code == "NoSuchBucket" or (code in _MISSING_KEY_CODES and not self._bucket_exists()):
            return BucketNotFoundError(
                f"S3 bucket '{self.bucket}' does not exist at endpoint {self._endpoint()} "
                f"(while accessing {uri}); create it, or fix the bucket in the URI or the endpoint in "
                f"{ENDPOINT_ENV_HINT}"
            )
        if code in _MISSING_KEY_CODES:
            return ArtifactNotFoundError(f"no artifact at {uri}")
        if code in _AUTH_ERROR_CODES:
            return ArtifactStoreAuthError(
                f"S3 endpoint {self._endpoint()} rejected the request for {uri} (bucket '{self.bucket}'): "
                f"{code or 'HTTP 403'} ({_message(err)}), using {self._client.credential_summary()}. Check "
                f"{CREDENTIAL_ENV_HINT}, the endpoint in {ENDPOINT_ENV_HINT} and AWS_REGION, "
                f"and that these credentials may access bucket '{self.bucket}'"
            )
        return ArtifactStoreError(f"S3 request for {uri} at {self._endpoint()} failed: {code} ({_message(err)})")

    def _translate_botocore(self, err: Exception) -> ArtifactStoreError:
        from botocore.exceptions import EndpointConnectionError, NoCredentialsError, PartialCredentialsError

        if isinstance(err, (NoCredentialsError, PartialCredentialsError)):
            return ArtifactStoreAuthError(
                f"no usable AWS credentials to access {self.uri} at {self._endpoint()}: {err}. "
                f"Set {CREDENTIAL_ENV_HINT}"
            )
        if isinstance(err, EndpointConnectionError):
            return ArtifactStoreError(
                f"cannot reach the S3 endpoint for {self.uri}: {err}. Check {ENDPOINT_ENV_HINT}"
            )
        return ArtifactStoreError(f"S3 request for {self.uri} failed: {err}")

    def _bucket_exists(self) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._client.get().head_bucket(Bucket=self.bucket)
        except ClientError as err:
            return str(err.response.get("Error", {}).get("Code", "")) not in ("404", "NoSuchBucket", "NotFound")
        return True

    def put_bytes(self, key: str, data: bytes) -> None:
        log.debug("put %s (%d bytes)", self.uri_of(key), len(data))
        self._call(key, "put_object", Bucket=self.bucket, Key=self._key(key), Body=data)

    def delete(self, key: str) -> None:
        self._call(key, "delete_object", Bucket=self.bucket, Key=self._key(key))  # S3 deletes are idempotent

    def get_bytes(self, key: str) -> bytes:
        response = self._call(key, "get_object", Bucket=self.bucket, Key=self._key(key))
        return response["Body"].read()

    def upload_file(self, local_path: str | Path, key: str) -> None:
        source = Path(local_path)
        if not source.is_file():
            raise FileNotFoundError(f"upload_file: local file {source} does not exist")
        log.debug("upload %s -> %s", source, self.uri_of(key))
        # upload_fileobj (unlike upload_file) lets the ClientError through, so _translate sees its code.
        with source.open("rb") as fh:
            self._call(key, "upload_fileobj", Fileobj=fh, Bucket=self.bucket, Key=self._key(key))

    def download_file(self, key: str, local_path: str | Path) -> Path:
        target = Path(local_path)
        s3_key = self._key(key)
        log.debug("download %s -> %s", self.uri_of(key), target)

        def fetch(fh: IO[bytes]) -> None:
            self._call(key, "download_fileobj", Bucket=self.bucket, Key=s3_key, Fileobj=fh)

        _write_atomic(target, fetch)
        return target

    def exists(self, key: str = "") -> bool:
        from botocore.exceptions import ClientError

        s3_key = self._key(key, allow_root=True)
        if s3_key:
            try:
                self._client.get().head_object(Bucket=self.bucket, Key=s3_key)
                return True
            except ClientError as err:
                if str(err.response.get("Error", {}).get("Code", "")) not in _MISSING_KEY_CODES:
                    raise self._translate(err, key) from err
        return bool(self._list_keys(s3_key + "/" if s3_key else "", key, max_keys=1))

    def _list_keys(self, s3_prefix: str, key: str, max_keys: int | None = None) -> list[str]:
        keys: list[str] = []
        token: dict[str, str] = {}
        while True:
            page = self._call(key, "list_objects_v2", Bucket=self.bucket, Prefix=s3_prefix,
                              **({"MaxKeys": max_keys} if max_keys else {}), **token)
            keys.extend(o["Key"] for o in page.get("Contents", []) if not o["Key"].endswith("/"))
            if (max_keys and len(keys) >= max_keys) or not page.get("IsTruncated"):
                return keys
            token = {"ContinuationToken": page["NextContinuationToken"]}

    def list(self, prefix: str = "") -> list[str]:
        prefix = clean_key(prefix, allow_root=True)
        root = self.prefix + "/" if self.prefix else ""
        keys = [k[len(root):] for k in self._list_keys(root + prefix, prefix)]
        return _under(keys, prefix)

    def local_path(self, key: str = "") -> Path:
        """Download ``key`` (a file, or every file under it) into the cache and return the local copy.

        The cached copy is replaced on every call, so it never serves stale artifacts.
        """
        key = clean_key(key, allow_root=True)
        target = self.cache_dir / self.bucket / self._key(key, allow_root=True)
        keys = self.list(key)
        if key in keys:
            return self.download_file(key, target)
        if not keys:
            raise ArtifactNotFoundError(f"no artifact at {self.uri_of(key)}")
        if target.exists():
            shutil.rmtree(target)
        return self.download_dir(key, target)


def _message(err: Any) -> str:
    return str(err.response.get("Error", {}).get("Message", "")) or "no message"


def default_cache_dir() -> Path:
    """``$ONEVISION_CACHE_DIR``, else ``$XDG_CACHE_HOME/onevision/s3`` (``~/.cache/onevision/s3``)."""
    if os.environ.get(CACHE_DIR_ENV_VAR):
        return Path(os.environ[CACHE_DIR_ENV_VAR])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "onevision" / "s3"


def open_store(uri: str | Path, cache_dir: str | Path | None = None) -> ArtifactStore:
    """A store for a local path, a ``file://`` URI or ``s3://bucket[/prefix]``.

    ``cache_dir`` is where an S3 store's ``local_path`` downloads to (default: `default_cache_dir()`).
    """
    if isinstance(uri, Path):
        return LocalStore(uri)
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError(f"S3 URI {uri!r} has no bucket; expected s3://bucket/prefix")
        return S3Store(parsed.netloc, parsed.path, cache_dir)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ValueError(f"file URI {uri!r} names host {parsed.netloc!r}; expected file:///absolute/path")
        return LocalStore(unquote(parsed.path))
    if parsed.scheme and len(parsed.scheme) > 1:  # one letter: a Windows drive such as C:\
        raise ValueError(
            f"unsupported artifact URI {uri!r}; expected a local path, file:///path or s3://bucket/prefix"
        )
    return LocalStore(uri)

