"""The architecture of docs/ARCHITECTURE.md, held: which package may import which, and no import cycle.

Every import of every module is read from its source, those inside functions and under TYPE_CHECKING too:
a lazy import may save a cost, never hide a cycle or a reach across the layers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = {"hdh_migrate": ROOT / "hdh_migrate", "hdh_airflow": ROOT / "plugins" / "hdh_airflow"}
BASE = {"hdh_migrate", "hdh_migrate.errors", "hdh_migrate.sizes", "hdh_migrate.locations", "hdh_migrate.home"}
BELOW_RUNS = {"base", "stores", "transfer", "validation", "audit"}
#: package -> the packages its modules may import (docs/ARCHITECTURE.md, "Packages")
ALLOWED = {
    "base": {"base"},
    "stores": {"base", "stores"},
    "transfer": {"base", "stores", "transfer"},
    "validation": {"base", "stores", "validation"},
    "audit": {"base", "stores", "transfer", "audit"},
    "runs": BELOW_RUNS | {"runs"},
    "cli": BELOW_RUNS | {"runs", "cli", "dev"},
    "dev": BELOW_RUNS | {"runs", "dev"},
    "airflow": BELOW_RUNS | {"runs", "airflow"},
}


def _modules() -> dict[str, Path]:
    found = {}
    for top, folder in SOURCES.items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            found[".".join([top, *parts])] = path
    return found


MODULES = _modules()


def _package(module: str) -> str:
    if module.startswith("hdh_airflow"):
        return "airflow"
    if module in BASE:
        return "base"
    return module.split(".")[1]


def _resolve(name: str) -> str | None:
    """The project module an import names (the longest known prefix), None for anything else."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str) -> set[str]:
    tree = ast.parse(MODULES[module].read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # "from pkg import mod" depends on the submodule; "from mod import name" on the module
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                names.add(sub if sub in MODULES else node.module)
    assert not any(isinstance(n, ast.ImportFrom) and n.level for n in ast.walk(tree)), f"{module}: relative import"
    return {m for m in map(_resolve, names) if m is not None and m != module}


GRAPH = {m: _imports(m) for m in MODULES}


def test_packages_import_only_the_layers_below_them() -> None:
    wrong = sorted(
        f"{m} imports {d}" for m, deps in GRAPH.items() for d in deps if _package(d) not in ALLOWED[_package(m)]
    )
    assert not wrong, "imports across the layers (docs/ARCHITECTURE.md):\n" + "\n".join(wrong)


def test_base_modules_import_only_errors() -> None:
    for m in BASE:
        assert GRAPH[m] <= {"hdh_migrate.errors", "hdh_migrate"}, (m, GRAPH[m])


def _cycle_from(start: str) -> list[str] | None:
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for dep in sorted(GRAPH[node]):
            if dep == start:
                return [*path, start]
            if dep not in seen:
                seen.add(dep)
                stack.append((dep, [*path, dep]))
    return None


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "hdh_migrate"))
def test_no_import_cycle(module: str) -> None:
    # the package root only holds the version: every module may import it, it imports nothing
    cycle = _cycle_from(module)
    assert cycle is None, " -> ".join(cycle)


def test_the_graph_is_read() -> None:
    """The reading itself: a layer that imports nothing would pass every rule above."""
    assert "hdh_migrate.runs.migration" in GRAPH["hdh_migrate.runs.pipeline"]
    assert "hdh_migrate.stores.interface" in GRAPH["hdh_migrate.transfer.copier"]
    assert "hdh_migrate.runs.migration" in GRAPH["hdh_airflow.tasks"]
