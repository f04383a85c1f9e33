"""The artifact store on a local directory (the S3 store is tested against a real server in integration/)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from onevision.storage import ArtifactNotFoundError, LocalStore, S3Store, open_store


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return open_store(tmp_path / "artifacts")


def make_tree(root: Path) -> dict[str, bytes]:
    files = {"encoder.json": b'{"dim": 8}', "weights/encoder.pt": b"\x00\x01\x02", "weights/deep/x.bin": b"x"}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def test_open_store_accepts_paths_and_file_uris(tmp_path: Path) -> None:
    by_path = open_store(tmp_path)
    by_str = open_store(str(tmp_path))
    by_uri = open_store(tmp_path.as_uri())
    assert isinstance(by_path, LocalStore)
    assert by_path.uri == by_str.uri == by_uri.uri == str(tmp_path)


def test_open_store_parses_s3_uri_without_touching_the_network() -> None:
    store = open_store("s3://models/runs/42/")
    assert isinstance(store, S3Store)
    assert (store.bucket, store.prefix, store.uri) == ("models", "runs/42", "s3://models/runs/42")
    assert store.join("vrq", "sids.parquet").uri == "s3://models/runs/42/vrq/sids.parquet"


def test_open_store_rejects_unknown_scheme() -> None:
    with pytest.raises(ValueError, match="gs://bucket/x.*expected a local path, file:///path or s3://"):
        open_store("gs://bucket/x")


def test_bytes_round_trip(store: LocalStore) -> None:
    store.put_bytes("vrq/codebooks.pt", b"\x00abc\xff")
    assert store.get_bytes("vrq/codebooks.pt") == b"\x00abc\xff"


def test_put_overwrites(store: LocalStore) -> None:
    store.put_text("a.txt", "old")
    store.put_text("a.txt", "new")
    assert store.get_text("a.txt") == "new"


def test_json_round_trip_keeps_key_order(store: LocalStore) -> None:
    metrics = {"model": "generator", "recall@10": 0.5, "ndcg@10": 0.25, "n_queries": 3}
    store.put_json("eval/generator/metrics.json", metrics)
    loaded = store.get_json("eval/generator/metrics.json")
    assert loaded == metrics
    assert list(loaded) == list(metrics)


def test_join_gives_a_sub_store(store: LocalStore) -> None:
    store.join("generator", "stage1").put_text("config.json", "{}")
    assert store.get_text("generator/stage1/config.json") == "{}"
    assert store.join("generator").uri == str(Path(store.uri) / "generator")


def test_file_round_trip(store: LocalStore, tmp_path: Path) -> None:
    source = tmp_path / "model.mar"
    source.write_bytes(b"archive")
    store.upload_file(source, "serving/model.mar")
    out = store.download_file("serving/model.mar", tmp_path / "back" / "model.mar")
    assert out.read_bytes() == b"archive"


def test_dir_round_trip(store: LocalStore, tmp_path: Path) -> None:
    files = make_tree(tmp_path / "encoder")
    keys = store.upload_dir(tmp_path / "encoder", "encoder")
    out = store.download_dir("encoder", tmp_path / "copy")
    assert keys == sorted(f"encoder/{k}" for k in files)
    assert {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()} == files


def test_list_is_sorted_and_treats_prefix_as_a_directory(store: LocalStore) -> None:
    for key in ["vrq/trie.npz", "vrq/sids.parquet", "vrq_report.json", "encoder/encoder.pt"]:
        store.put_bytes(key, b"")
    assert store.list("vrq") == ["vrq/sids.parquet", "vrq/trie.npz"]
    assert store.list() == ["encoder/encoder.pt", "vrq/sids.parquet", "vrq/trie.npz", "vrq_report.json"]
    assert store.list("missing") == []


def test_exists_for_files_directories_and_missing_keys(store: LocalStore) -> None:
    store.put_bytes("vrq/trie.npz", b"t")
    assert store.exists("vrq/trie.npz")
    assert store.exists("vrq")
    assert not store.exists("vrq/sids.parquet")
    assert not store.exists("cascade")


def test_missing_key_raises_artifact_not_found_naming_the_path(store: LocalStore) -> None:
    with pytest.raises(ArtifactNotFoundError, match=r"no artifact at .*artifacts/vrq/sids\.parquet"):
        store.get_bytes("vrq/sids.parquet")


def test_artifact_not_found_is_a_file_not_found_error(store: LocalStore) -> None:
    with pytest.raises(FileNotFoundError):
        store.get_json("eval/metrics.json")


def test_download_dir_of_missing_prefix_raises(store: LocalStore, tmp_path: Path) -> None:
    with pytest.raises(ArtifactNotFoundError, match="no artifacts under .*artifacts/generator"):
        store.download_dir("generator", tmp_path / "out")


@pytest.mark.parametrize("key", ["../escape.txt", "a/../../b", "a//b", "./a", ""])
def test_invalid_keys_are_rejected(store: LocalStore, key: str) -> None:
    with pytest.raises(ValueError, match="artifact key"):
        store.put_bytes(key, b"x")


def test_local_path_is_the_directory_itself(store: LocalStore) -> None:
    store.put_text("encoder/encoder.json", "{}")
    assert store.local_path("encoder") == Path(store.uri) / "encoder"
    assert store.local_path("encoder/encoder.json").read_text() == "{}"


def test_local_path_of_missing_key_raises(store: LocalStore) -> None:
    with pytest.raises(ArtifactNotFoundError, match="encoder"):
        store.local_path("encoder")


def test_importing_storage_does_not_import_boto3() -> None:
    code = "import sys, onevision.storage; assert 'boto3' not in sys.modules and 'botocore' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_artifacts_get_the_mode_of_any_new_file(tmp_path: Path) -> None:
    """Atomic writes go through mkstemp (0600); the published file has the umask's usual mode, like an archive."""
    import os
    import stat

    store = LocalStore(tmp_path)
    store.put_json("ab/replay.json", {"x": 1})
    (tmp_path / "plain.txt").write_text("x")
    mode = stat.S_IMODE(os.stat(tmp_path / "ab" / "replay.json").st_mode)
    assert mode == stat.S_IMODE(os.stat(tmp_path / "plain.txt").st_mode) and mode & stat.S_IRGRP
