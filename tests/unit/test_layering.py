"""The core imports nothing above it: `onevision/` never imports `serving`, `monitoring`, `pipelines` or
`components` (they register their CLI groups as entry points instead), and `serving` never imports `components`."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ABOVE = {"onevision": {"serving", "monitoring", "pipelines", "components"}, "serving": {"components", "pipelines"}}


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(ABOVE))
def test_a_package_imports_nothing_above_it(package: str) -> None:
    offending = {str(p.relative_to(ROOT)): sorted(imported_packages(p) & ABOVE[package])
                 for p in sorted((ROOT / package).rglob("*.py"))}
    assert {k: v for k, v in offending.items() if v} == {}


def test_the_root_command_discovers_every_registered_group() -> None:
    import typer

    from onevision.cli import app

    names = set(typer.main.get_command(app).commands)
    assert {"world", "data", "train", "evaluate", "pipeline", "serve", "canary", "ab", "drift"} <= names
