"""Per-model derived weights (the decoders' plain-tensor or NumPy forms), built once and rebuilt only when the
model's parameters change.

Walking a model's parameters to check they are unchanged costs more than a decode step at batch 1, so the check
is two cheap ones: a global generation count that torch's registration hooks advance whenever any module gets a
new parameter or submodule (`layer.weight = nn.Parameter(...)`, `load_state_dict(assign=True)`), and the version
counters of the parameters the entry was built from (in-place updates: optimizer steps, `load_state_dict`).
"""
from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TypeVar

from torch import nn
from torch.nn.modules import module as _module

T = TypeVar("T")

_generation = 0


def _changed(*_args) -> None:
    global _generation
    _generation += 1


_module.register_module_parameter_registration_hook(_changed)
_module.register_module_module_registration_hook(_changed)


class PerModel:
    """A cache of `build(model)` keyed weakly by model."""

    def __init__(self, build: Callable[[nn.Module], T]):
        self.build = build
        self._entries: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def __call__(self, model: nn.Module) -> T:
        hit = self._entries.get(model)
        if hit is not None:
            generation, params, versions, value = hit
            if generation == _generation and all(p._version == v for p, v in zip(params, versions)):
                return value
        params = tuple(model.parameters())
        generation, value = _generation, self.build(model)
        self._entries[model] = (generation, params, tuple(p._version for p in params), value)
        return value
