"""The core imports nothing above it: `onevision/` never imports `serving`, `monitoring`, `pipelines` or
`components` (they register their CLI groups as entry points instead), and `serving` never imports `components`;
no module-level import loop anywhere."""
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
    assert {"world", "data", "train", "evaluate", "pipeline", "serve", "canary", "ab", "drift", "events"} <= names


PACKAGES = ("onevision", "serving", "monitoring", "pipelines", "components")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_level_imports(path: Path, known: set[str]) -> set[str]:
    """Modules imported when `path` is imported (not inside functions, not under `if TYPE_CHECKING`)."""
    found = set()
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return found & known


def test_there_is_no_import_loop() -> None:
    modules = {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}
    graph = {name: module_level_imports(path, set(modules)) for name, path in modules.items()}
    state: dict[str, int] = {}
    loops: list[list[str]] = []

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for other in sorted(graph[name]):
            if state.get(other) == 1:
                loops.append(trail[trail.index(other):] + [other])
            elif other not in state:
                visit(other, trail + [other])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert loops == []
