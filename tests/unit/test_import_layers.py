"""The import-layer contracts in pyproject.toml name every module they govern, so a new module cannot escape them;
the models' modules, and the parts of each package with its own contract, import one another without a circle."""

from __future__ import annotations

import ast
import graphlib
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "responder"
CONTRACTS: list[dict[str, Any]] = [
    c for c in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    if c["type"] == "layers"
]


def _named(contract: dict[str, Any]) -> set[str]:
    return {name.strip() for layer in contract["layers"] for name in re.split(r"[|:]", layer)}


def _modules(folder: Path) -> set[str]:
    """The modules and packages directly inside `folder`, `__init__` left out (it is the container itself)."""
    files = {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}
    packages = {p.name for p in folder.iterdir() if (p / "__init__.py").is_file()}
    return files | packages


def test_the_top_level_layers_name_every_module_of_responder() -> None:
    """Every top-level module and package of responder has a place in "Data flows one way"."""
    (contract,) = [c for c in CONTRACTS if "containers" not in c]
    named = {n.removeprefix("responder.") for n in _named(contract)}
    assert _modules(PACKAGE) - named == set()


@pytest.mark.parametrize("contract", [c for c in CONTRACTS if "containers" in c], ids=lambda c: c["name"])
def test_each_package_s_layers_name_every_module_of_it(contract: dict[str, Any]) -> None:
    """A package with its own layer contract (the engine, the actuators, …) places each of its modules in a layer."""
    for container in contract["containers"]:
        folder = PACKAGE.joinpath(*container.split(".")[1:])
        assert _modules(folder) - _named(contract) == set(), container


def _imported_parts(path: Path, package: str) -> set[str]:
    """The parts of `package` (its modules and subpackages) that the file imports, inside functions too (a lazy
    import) and under TYPE_CHECKING."""
    prefix = package + "."
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module == package:
            found |= {prefix + a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return {n.removeprefix(prefix).split(".")[0] for n in found if n.startswith(prefix)}


def _imports_within(package: str) -> dict[str, set[str]]:
    """Each module of `package` and the modules of it that it imports, inside functions too (a lazy import)."""
    return {path.stem: _imported_parts(path, package) - {path.stem}
            for path in PACKAGE.joinpath(*package.split(".")[1:]).glob("*.py")}


def test_the_models_import_one_another_without_a_circle() -> None:
    """No module of responder.models imports (even inside a function) one that imports it back, directly or not."""
    graph = _imports_within("responder.models")
    for start, imported in graph.items():
        seen: set[str] = set()
        todo = list(imported)
        while todo:
            module = todo.pop()
            assert module != start, f"responder.models.{start} is imported back by what it imports"
            if module not in seen:
                seen.add(module)
                todo.extend(graph.get(module, ()))


def _imports_below(package: str) -> dict[str, set[str]]:
    """Each part of `package` (a module, or a subpackage taken whole) and the other parts it imports; the package's
    own `__init__` is left out (it is the container)."""
    folder = PACKAGE.joinpath(*package.split(".")[1:])
    graph: dict[str, set[str]] = {}
    for path in folder.rglob("*.py"):
        if path.parent == folder and path.stem == "__init__":
            continue
        part = path.relative_to(folder).parts[0].removesuffix(".py")
        graph.setdefault(part, set()).update(_imported_parts(path, package) - {part})
    return graph


@pytest.mark.parametrize("package", sorted({p for c in CONTRACTS for p in c.get("containers", ())}))
def test_a_layered_package_s_parts_import_one_another_without_a_circle(package: str) -> None:
    """No part of a layered package imports, even lazily or for typing, one that imports it back."""
    try:
        graphlib.TopologicalSorter(_imports_below(package)).prepare()
    except graphlib.CycleError as circle:
        pytest.fail(f"{package}: import circle {' -> '.join(circle.args[1])}")


# (package, the page that prints its contract's order, the words just before the order)
DOC_ORDERS = [("responder.engine", "engine.md", "Inside `responder.engine` the modules import downwards only:"),
              ("responder.models", "engine.md", "The models import"),
              ("responder.actuators", "development.md", "- `responder.actuators`:"),
              ("responder.ingest", "development.md", "- `responder.ingest`:"),
              ("responder.tabletop", "development.md", "- `responder.tabletop`:")]


@pytest.mark.parametrize(("package", "page", "before"), DOC_ORDERS, ids=[p for p, _, _ in DOC_ORDERS])
def test_the_orders_the_docs_print_are_the_contracts(package: str, page: str, before: str) -> None:
    """The import order a page prints for a package (`a | b → c`) is the layers of its contract in pyproject.toml."""
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    found = re.search(re.escape(before) + r"\s*([\w\s|→]+)", text)
    assert found, f"{page}: no order after {before!r}"
    printed = [{n.strip() for n in layer.split("|")} for layer in found[1].split("→")]
    (contract,) = [c for c in CONTRACTS if c.get("containers") == [package]]
    assert printed == [{n.strip() for n in re.split(r"[|:]", layer)} for layer in contract["layers"]], page
