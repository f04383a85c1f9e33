"""A torch module's artifact: its state dict and its config dataclass as JSON, two files in one directory.

Each file is written atomically; the config goes last, so a directory without it is an unfinished save.
Loading reads tensors and plain values only (`weights_only=True`), never code.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

C = TypeVar("C")
M = TypeVar("M", bound=nn.Module)


def write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """`write(tmp)`, then rename `tmp` onto `path`, so readers never see half a file. `tmp` sits in a private
    directory beside `path` under `path`'s own name, because torch.save names the records inside its zip
    archive after the file: the same module gives the same bytes as a direct save."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        write(tmp_dir / path.name)
        os.replace(tmp_dir / path.name, path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def save_module(module: nn.Module, config: Any, directory: Path, weights_file: str, config_file: str) -> None:
    """`module`'s state dict to `directory/weights_file`, then the `config` dataclass to `directory/config_file`."""
    directory = Path(directory)
    write_atomic(directory / weights_file, lambda tmp: torch.save(module.state_dict(), tmp))
    text = json.dumps(dataclasses.asdict(config), indent=2) + "\n"
    write_atomic(directory / config_file, lambda tmp: tmp.write_text(text))


def load_config(config_cls: type[C], path: Path, what: str) -> C:
    """The config dataclass saved at `path`; JSON arrays come back as tuples (configs are frozen)."""
    if not path.exists():
        raise FileNotFoundError(f"{what} artifact missing: {path}")
    raw = json.loads(path.read_text())
    return config_cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})


def load_module(build: Callable[[C], M], config_cls: type[C], directory: Path, weights_file: str, config_file: str,
                what: str) -> M:
    """`build(config)` with the saved weights loaded, in eval mode, on the CPU."""
    directory = Path(directory)
    model = build(load_config(config_cls, directory / config_file, what))
    model.load_state_dict(torch.load(directory / weights_file, map_location="cpu", weights_only=True))
    return model.eval()
