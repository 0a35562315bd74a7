"""The import-layer contracts in pyproject.toml name every module they govern, so a new module cannot escape them."""

from __future__ import annotations

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
    """A package with its own layer contract (the engine, the service) places each of its modules in a layer."""
    for container in contract["containers"]:
        folder = PACKAGE.joinpath(*container.split(".")[1:])
        assert _modules(folder) - _named(contract) == set(), container
