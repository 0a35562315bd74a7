"""Every `event.attributes` key a decoder's code can set is in the list it declares: `group_by` refuses at load an
attribute no decoder of the trigger's sources declares, so a missing name would refuse a valid runbook. The recorded
examples (tests/unit/test_decoders.py) only cover the branches they take; this reads the code itself."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import responder.normalise
from responder.normalise.registry import attribute_names, formats

DYNAMIC = "<a key that is not a literal>"


def _keys(node: ast.expr, function: ast.AST) -> set[str]:
    """The keys of an event's attributes: a dict literal's, or those a local name is given in its function."""
    if isinstance(node, ast.Dict):
        return {k.value if isinstance(k, ast.Constant) and isinstance(k.value, str) else DYNAMIC for k in node.keys}
    if not isinstance(node, ast.Name):
        return {DYNAMIC}
    found: set[str] = set()
    for sub in ast.walk(function):
        if isinstance(sub, (ast.Assign, ast.AnnAssign)):
            targets = sub.targets if isinstance(sub, ast.Assign) else [sub.target]
            for target in targets:
                if isinstance(target, ast.Name) and target.id == node.id and sub.value is not None:
                    found |= _keys(sub.value, function) if isinstance(sub.value, ast.Dict) else {DYNAMIC}
                elif isinstance(target, ast.Subscript) and ast.unparse(target.value) == node.id:
                    key = target.slice
                    found.add(key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else DYNAMIC)
        elif isinstance(sub, ast.Call) and ast.unparse(sub.func) in (f"{node.id}.update", f"{node.id}.setdefault"):
            found.add(DYNAMIC)
    return found


def emitted(code: str) -> dict[str | None, set[str]]:
    """Event source (None when not a literal) → the attribute keys the code's event builders set: `make_event(...,
    attributes=…)` calls and the fast path's field dicts (with `incident_key` and `attributes`)."""
    out: dict[str | None, set[str]] = {}
    for function in ast.walk(ast.parse(code)):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)) or function.name == "make_event":
            continue  # make_event passes on what it is given, plus COMMON_ATTRIBUTES (registry.py)
        for node in ast.walk(function):
            fields: dict[str, ast.expr] = {}
            if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("make_event"):
                fields = {kw.arg: kw.value for kw in node.keywords if kw.arg}
            elif isinstance(node, ast.Dict):
                named = {k.value: v for k, v in zip(node.keys, node.values, strict=True)
                         if isinstance(k, ast.Constant) and isinstance(k.value, str)}
                fields = named if {"incident_key", "attributes"} <= named.keys() else {}
            if "attributes" in fields:
                source = fields.get("source")
                literal = source.value if isinstance(source, ast.Constant) and isinstance(source.value, str) else None
                out.setdefault(literal, set()).update(_keys(fields["attributes"], function))
    return out


def test_every_attribute_a_decoder_sets_is_declared_for_its_source():
    """Each module's event builders set only keys declared by the decoders it registers (or its literal source)."""
    undeclared: dict[str, set[str]] = {}
    for path in sorted(Path(responder.normalise.__file__).parent.glob("*.py")):
        module = f"responder.normalise.{path.stem}"
        importlib.import_module(module)
        own = {f.source for f in formats().values() if f.decode.__module__ == module}
        for source, keys in emitted(path.read_text()).items():
            sources = {source} if source is not None else own
            assert sources, f"{module} builds events but registers no decoder and names no source"
            declared = frozenset().union(*(attribute_names(s) for s in sources))
            if keys - declared:
                undeclared.setdefault(path.name, set()).update(keys - declared)
    assert undeclared == {}


def test_the_reading_finds_an_undeclared_key_and_one_that_is_not_a_literal():
    """The check above can fail: a new key, a key from the record, or a spread map are all reported."""
    code = '''
def build(doc):
    extra = {"title": doc["t"]}
    extra[doc["name"]] = 1
    return make_event(source="guardduty", attributes={"title": 1, "brand_new": 2, **doc})

def fast(doc):
    attrs = {}
    attrs["count"] = 1
    attrs["other"] = 2
    return {"source": "guardduty", "incident_key": "k", "attributes": attrs}
'''
    found = emitted(code)
    assert found == {"guardduty": {"title", "brand_new", DYNAMIC, "count", "other"}}
    assert found["guardduty"] - attribute_names("guardduty") == {"brand_new", DYNAMIC, "other"}
