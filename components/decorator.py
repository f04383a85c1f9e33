"""`onevision_component`: `kfp.dsl.component` with the project image and no per-task pip install.

The image already holds kfp and the `onevision` package, so ``install_kfp_package=False`` keeps the
container command to ``python3 -m kfp.dsl.executor_main``; the local SubprocessRunner then runs each
task with the current interpreter and no install step.
"""
from __future__ import annotations

from collections.abc import Callable

from kfp import dsl
from kfp.dsl.python_component import PythonComponent

from onevision.image import image


def onevision_component(func: Callable) -> PythonComponent:
    return dsl.component(func, base_image=image(), install_kfp_package=False)
