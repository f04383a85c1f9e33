"""What every `onevision` command group shares: how a command fails, and where its artifacts are read from
and written to (a local path or a store URI, through `onevision.storage`)."""
from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import typer


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `error: message` in red on stderr and exit with `code` (1: the command failed, 2: bad usage)."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def input_path(uri: str) -> Path:
    """A local directory holding the artifact at `uri` (downloaded from S3 when needed)."""
    from onevision.storage import ArtifactNotFoundError, open_store

    try:
        return open_store(uri).local_path()
    except (ArtifactNotFoundError, ValueError) as exc:
        fail(str(exc))


@contextlib.contextmanager
def output_path(uri: str) -> Iterator[Path]:
    """Write into a local directory; a remote store receives it once the block is done."""
    from onevision.storage import LocalStore, open_store

    try:
        store = open_store(uri)
    except ValueError as exc:
        fail(str(exc), 2)
    if isinstance(store, LocalStore):
        store.root.mkdir(parents=True, exist_ok=True)
        yield store.root
        return
    with tempfile.TemporaryDirectory(prefix="onevision-") as tmp:
        yield Path(tmp)
        store.upload_dir(Path(tmp))
