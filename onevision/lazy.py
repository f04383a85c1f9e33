"""Packages whose names are imported on first use (PEP 562), so importing one module of a package (a config
for CLI defaults, a command group for `--help`) does not load numpy, pandas or torch through its __init__."""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """The package's `__getattr__`: `exports` maps each public name to the module that defines it."""

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(importlib.import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
