"""One KFP v2 component per pipeline step, each a thin typed wrapper of one library call.

Components are loaded on first access (``from components import train_vrq``), so importing a helper
such as `components.runtime` inside a running component does not build every component spec.
"""
from __future__ import annotations

import importlib
from typing import Any

_MODULES = {
    "ingest_world": "components.ingest",
    "validate_data": "components.validate",
    "train_encoder": "components.encoder",
    "train_vrq": "components.vrq",
    "train_cascade": "components.cascade",
    "train_generator": "components.generator",
    "package_bundle": "components.bundle",
    "evaluate_model": "components.evaluate",
    "parity_gate": "components.parity",
    "gate_failure_report": "components.gate_report",
    "build_archive": "components.archive",
    "deploy_canary": "components.deploy",
    "drift_report": "components.drift",
}

__all__ = sorted(_MODULES)


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return getattr(importlib.import_module(_MODULES[name]), name)
    raise AttributeError(f"module 'components' has no attribute {name!r}")
