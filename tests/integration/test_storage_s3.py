"""The artifact store against a real S3 endpoint: moto's server in a subprocess on 127.0.0.1."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from s3_server import Credentials, S3Server, free_port, moto_s3, s3_env  # noqa: F401 (fixture)

from onevision.storage import (
    ArtifactNotFoundError,
    ArtifactStoreAuthError,
    ArtifactStoreError,
    BucketNotFoundError,
    S3Store,
    open_store,
)

pytestmark = pytest.mark.integration

BUCKET = "onevision-artifacts"


@pytest.fixture(scope="module")
def s3(moto_s3: S3Server) -> S3Server:
    return moto_s3


@pytest.fixture
def store(s3: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> S3Store:
    """A fresh bucket on a clean server, the AWS env pointing at it, and a store at a prefix in it."""
    s3.reset()
    s3.create_bucket(BUCKET)
    s3_env(monkeypatch, s3.endpoint_url)
    return open_store(f"s3://{BUCKET}/runs/1", cache_dir=tmp_path / "cache")


def raw_keys(s3: S3Server) -> list[str]:
    return sorted(o["Key"] for o in s3.client().list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_bytes_round_trip_lands_under_the_prefix(store: S3Store, s3: S3Server) -> None:
    store.put_bytes("vrq/codebooks.pt", b"\x00abc\xff")
    assert store.get_bytes("vrq/codebooks.pt") == b"\x00abc\xff"
    assert raw_keys(s3) == ["runs/1/vrq/codebooks.pt"]


def test_json_round_trip(store: S3Store) -> None:
    metrics = {"model": "generator", "recall@10": 0.5, "n_queries": 3}
    store.join("eval", "generator").put_json("metrics.json", metrics)
    assert store.get_json("eval/generator/metrics.json") == metrics


def test_file_round_trip(store: S3Store, tmp_path: Path) -> None:
    source = tmp_path / "model.mar"
    source.write_bytes(b"archive" * 1000)
    store.upload_file(source, "serving/model.mar")
    out = store.download_file("serving/model.mar", tmp_path / "back" / "model.mar")
    assert out.read_bytes() == source.read_bytes()


def test_dir_round_trip(store: S3Store, s3: S3Server, tmp_path: Path) -> None:
    files = {"encoder.json": b"{}", "weights/encoder.pt": b"\x01\x02", "weights/deep/x.bin": b"x"}
    for rel, data in files.items():
        (tmp_path / "src" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "src" / rel).write_bytes(data)
    store.upload_dir(tmp_path / "src", "encoder")
    out = store.download_dir("encoder", tmp_path / "copy")
    assert {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()} == files
    assert raw_keys(s3) == sorted(f"runs/1/encoder/{rel}" for rel in [*files, "_PUBLISHED.json"])
    assert store.require_published("encoder") == {rel: len(data) for rel, data in files.items()}


def test_an_upload_that_fails_midway_leaves_no_published_version(store: S3Store, s3: S3Server, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(4):
        (tmp_path / "src" / "model-store").mkdir(parents=True, exist_ok=True)
        (tmp_path / "src" / "model-store" / f"part{i}.bin").write_bytes(bytes([i]) * 100)
    store.upload_dir(tmp_path / "src", "generator/v4")  # a complete earlier upload of this version
    real_upload, calls = S3Store.upload_file, []

    def crashing_upload(self: S3Store, local_path, key: str) -> None:
        calls.append(key)
        if len(calls) == 3:
            raise ConnectionError("connection lost mid-upload")
        real_upload(self, local_path, key)

    monkeypatch.setattr(S3Store, "upload_file", crashing_upload)
    with pytest.raises(ConnectionError):
        store.upload_dir(tmp_path / "src", "generator/v4")
    with pytest.raises(ArtifactNotFoundError, match="is not published"):
        store.require_published("generator/v4")  # the re-upload withdrew the old marker before writing anything
    monkeypatch.setattr(S3Store, "upload_file", real_upload)
    store.upload_dir(tmp_path / "src", "generator/v4")
    assert len(store.require_published("generator/v4")) == 4


def test_a_multipart_sized_object_round_trips(store: S3Store, s3: S3Server, tmp_path: Path) -> None:
    """boto3 switches to a multipart upload above 8 MiB (TransferConfig's default threshold)."""
    import os

    source = tmp_path / "big.mar"
    source.write_bytes(os.urandom(9 * 1024 * 1024 + 17))
    store.upload_file(source, "serving/big.mar")
    head = s3.client().head_object(Bucket=BUCKET, Key="runs/1/serving/big.mar")
    assert "-" in head["ETag"]  # a multipart object's ETag is "<md5 of part md5s>-<parts>"
    back = store.download_file("serving/big.mar", tmp_path / "back.mar")
    assert back.read_bytes() == source.read_bytes()


def test_list_and_exists_treat_prefixes_as_directories(store: S3Store) -> None:
    for key in ["vrq/trie.npz", "vrq/sids.parquet", "vrq_report.json"]:
        store.put_bytes(key, b"")
    assert store.list("vrq") == ["vrq/sids.parquet", "vrq/trie.npz"]
    assert store.list() == ["vrq/sids.parquet", "vrq/trie.npz", "vrq_report.json"]
    assert store.exists("vrq") and store.exists("vrq/trie.npz")
    assert not store.exists("vrq/codebooks.pt") and not store.exists("cascade")


def test_local_path_downloads_a_directory_into_the_cache(store: S3Store, tmp_path: Path) -> None:
    store.put_text("generator/stage1/config.json", '{"lr": 0.1}')
    store.put_bytes("generator/stage1/checkpoint.pt", b"ckpt")
    local = store.local_path("generator/stage1")
    assert local.is_relative_to(tmp_path / "cache")
    assert sorted(p.name for p in local.iterdir()) == ["checkpoint.pt", "config.json"]


def test_missing_object_names_the_s3_uri(store: S3Store) -> None:
    with pytest.raises(ArtifactNotFoundError, match=r"s3://onevision-artifacts/runs/1/vrq/sids\.parquet"):
        store.get_bytes("vrq/sids.parquet")


def test_missing_object_in_download_file_names_the_s3_uri(store: S3Store, tmp_path: Path) -> None:
    # download_file asks with HEAD, whose 404 has no error code: the store must still say "not found".
    with pytest.raises(ArtifactNotFoundError, match=r"s3://onevision-artifacts/runs/1/encoder/encoder\.pt"):
        store.download_file("encoder/encoder.pt", tmp_path / "encoder.pt")
    assert not (tmp_path / "encoder.pt").exists()


def test_missing_bucket_names_the_bucket(store: S3Store) -> None:
    missing = open_store("s3://no-such-bucket/x")
    with pytest.raises(BucketNotFoundError, match="bucket 'no-such-bucket' does not exist at endpoint http://127"):
        missing.put_text("a.txt", "a")


def test_missing_bucket_is_not_reported_as_a_missing_object(store: S3Store, tmp_path: Path) -> None:
    with pytest.raises(BucketNotFoundError, match="no-such-bucket"):
        open_store("s3://no-such-bucket/x").download_file("a.txt", tmp_path / "a.txt")


def test_endpoint_from_the_global_aws_endpoint_url(
    store: S3Store, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint_url)
    open_store(f"s3://{BUCKET}").put_text("hello.txt", "hi")
    assert raw_keys(s3) == ["hello.txt"]


@pytest.fixture
def iam_auth(store: S3Store, s3: S3Server) -> Iterator[Credentials]:
    """Switch the shared server to checking signatures against an IAM user, and back afterwards."""
    with s3.iam_auth() as creds:
        yield creds


def test_valid_credentials_pass_the_auth_check(
    iam_auth: Credentials, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3_env(monkeypatch, s3.endpoint_url, iam_auth)
    store = open_store(f"s3://{BUCKET}/runs/1")
    store.put_text("ok.txt", "ok")
    assert store.get_text("ok.txt") == "ok"


def test_unknown_access_key_gives_an_auth_error_naming_what_to_check(
    iam_auth: Credentials, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3_env(monkeypatch, s3.endpoint_url, Credentials("AKIAWRONGKEY0000WXYZ", "not-the-secret-123"))
    with pytest.raises(ArtifactStoreAuthError) as info:
        open_store(f"s3://{BUCKET}/runs/1").get_bytes("vrq/sids.parquet")
    message = str(info.value)
    for expected in ["InvalidAccessKeyId", f"bucket '{BUCKET}'", s3.endpoint_url, "AWS_ACCESS_KEY_ID",
                     "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "****WXYZ from env"]:
        assert expected in message
    assert "not-the-secret-123" not in message


def test_wrong_secret_gives_an_auth_error_without_the_secret(
    iam_auth: Credentials, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3_env(monkeypatch, s3.endpoint_url, Credentials(iam_auth.access_key_id, "wrong-secret-456"))
    with pytest.raises(ArtifactStoreAuthError, match="SignatureDoesNotMatch") as info:
        open_store(f"s3://{BUCKET}/runs/1").put_text("a.txt", "a")
    assert "wrong-secret-456" not in str(info.value)


def test_rejected_head_request_is_an_auth_error_not_a_missing_object(
    iam_auth: Credentials, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3_env(monkeypatch, s3.endpoint_url, Credentials("AKIAWRONGKEY0000WXYZ", "x"))
    with pytest.raises(ArtifactStoreAuthError, match=BUCKET):
        open_store(f"s3://{BUCKET}/runs/1").exists("vrq/sids.parquet")


def test_unreachable_endpoint_names_the_env_vars_to_check(monkeypatch: pytest.MonkeyPatch) -> None:
    s3_env(monkeypatch, f"http://127.0.0.1:{free_port()}")  # nothing listens there
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(ArtifactStoreError, match="cannot reach the S3 endpoint .*AWS_ENDPOINT_URL_S3"):
        open_store(f"s3://{BUCKET}/runs/1").get_bytes("a.txt")


def test_missing_credentials_give_an_auth_error(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    s3_env(monkeypatch, s3.endpoint_url)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(ArtifactStoreAuthError, match="no usable AWS credentials .*AWS_ACCESS_KEY_ID"):
        open_store(f"s3://{BUCKET}/runs/1").get_bytes("a.txt")
