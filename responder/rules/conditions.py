"""Evaluate conditions (all / any / not trees of operator tests) against a scope.

A scope maps namespaces (`event`, `incident`, `steps`) to plain dicts or to frozen models. Paths
walk model *fields* only (never methods or private attributes), dict keys and list indexes;
`event.resource.<kind>` is the event's first resource of that kind. Conditions are compiled once
into closures at load time, so evaluation does no parsing.

A value is read as the event's view writes it (`Event.view()`, responder/models/view.py), whether the scope holds
the model (a trigger) or the view (a step's `when`, a placeholder): a time as `…Z` text, an enum as its value, a
tuple as a list, NaN and infinities as null. So a condition means the same wherever it is written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from enum import Enum
from functools import lru_cache
from math import isfinite
from typing import Any

from pydantic import BaseModel

from responder.models.event import Event
from responder.models.runbook import AllOf, AnyOf, Condition, ConditionNode, NotOf
from responder.models.view import json_time, json_value
from responder.rules.operators import COMPARISONS, MISSING, OPERATORS, num
from responder.rules.times import TIME, time_operand, time_order

Predicate = Callable[[Mapping[str, Any]], bool]
Getter = Callable[[Mapping[str, Any]], Any]


_IS_MODEL: dict[type, bool] = {}  # issubclass(cls, BaseModel), per class (isinstance on pydantic's ABC is slow)


def _is_model(cls: type) -> bool:
    found = _IS_MODEL.get(cls)
    if found is None:
        found = _IS_MODEL[cls] = issubclass(cls, BaseModel)
    return found


def _step(cur: Any, part: str) -> Any:
    cls = type(cur)
    if cls is dict:
        return cur.get(part, MISSING)
    if _is_model(cls):
        if part[:1] == "_":
            return MISSING
        if (part == "resource" or part == "raw") and isinstance(cur, Event):
            if part == "raw":
                return MISSING  # runbooks read normalised fields only, as templates do
            by_kind: dict[str, Any] = {}
            for res in cur.resources:
                by_kind.setdefault(res.kind.value, res)
            return by_kind
        return cur.__dict__.get(part, MISSING)  # model fields only: never methods or private state
    if isinstance(cur, Mapping):
        return cur.get(part, MISSING)
    if isinstance(cur, list | tuple | set | frozenset) and part.isdigit():
        items = list(cur) if isinstance(cur, set | frozenset) else cur  # a set's items in the view's (its own) order
        index = int(part)
        return items[index] if index < len(items) else MISSING
    return MISSING


_PLAIN = (str, int, bool, type(None))  # read as they are (a float is read as a finite number or null)
_ITEMS = frozenset(_PLAIN)
_SCALARS = frozenset((*_PLAIN, float))


def _plain(items: list[Any] | tuple[Any, ...]) -> bool:
    """Whether every item is a plain JSON value (a float finite), which a list of them holds as it is."""
    if _ITEMS.issuperset(map(type, items)):
        return True
    return _SCALARS.issuperset(map(type, items)) and all(isfinite(x) for x in items if type(x) is float)


def _leaf(value: Any) -> Any:
    """`value` as the view holds it: a finite float as is, NaN and infinities as None, an enum as its value, a time
    as `json_time` writes it (`…Z`), a list of plain values as it is (not copied on every check), a model as its
    JSON dict, anything else (dicts, other lists, dates, Decimals, sets, bytes) as `json_value` writes it."""
    cls = type(value)
    if cls is float:
        return value if isfinite(value) else None
    if (cls is list or cls is tuple) and _plain(value):
        return value if cls is list else list(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return json_time(value)
    if isinstance(value, BaseModel):  # a model's dump keeps a JsonValue field's NaN, which `json_value` reads as None
        value = value.view() if isinstance(value, Event) else value.model_dump(mode="json")  # `event`: its view
    return json_value(value)


def lookup(scope: Mapping[str, Any], path: str) -> Any:
    """Read a dotted path (`event.resource.access_key.id`, `event.resources.0.id`); MISSING when absent."""
    return getter(path)(scope)


@lru_cache(maxsize=8192)
def getter(path: str) -> Getter:
    """A compiled reader for one dotted path."""
    parts = tuple(path.split("."))
    # (part, whether a model's field of that name is read straight from its __dict__): `_step` decides the rest
    steps = tuple((part, part[:1] != "_" and part not in ("resource", "raw")) for part in parts)

    def get(scope: Mapping[str, Any]) -> Any:
        cur: Any = scope
        for part, direct in steps:  # dicts and model fields inline (the hot cases), `_step` for everything else
            cls = type(cur)
            if cls is dict:
                cur = cur.get(part, MISSING)
            elif direct and (_IS_MODEL.get(cls) or _is_model(cls)):
                cur = cur.__dict__.get(part, MISSING)
            else:
                cur = _step(cur, part)
            if cur is MISSING:
                return MISSING
        cls = type(cur)
        if cls in _PLAIN:
            return cur
        if cls is float:  # the common number (a score), answered without a call
            return cur if isfinite(cur) else None
        return _leaf(cur)

    return get


def compile_node(node: ConditionNode) -> Predicate:
    """One condition tree as a closure over the scope."""
    if isinstance(node, Condition):
        get, op, value = getter(node.field), OPERATORS[node.op], time_operand(node.field, node.op, node.value)
        cmp = COMPARISONS.get(node.op)
        if cmp is not None and node.field == TIME:
            return time_order(get, cmp, value)
        if cmp is not None:  # one call fewer for the common numeric test
            return lambda scope: num(get(scope), value, cmp)
        return lambda scope: op(get(scope), value)
    if isinstance(node, AllOf):
        parts = [compile_node(n) for n in node.all]
        return lambda scope: all(p(scope) for p in parts)
    if isinstance(node, AnyOf):
        parts = [compile_node(n) for n in node.any]
        return lambda scope: any(p(scope) for p in parts)
    if isinstance(node, NotOf):
        inner = compile_node(node.not_)
        return lambda scope: not inner(scope)
    raise TypeError(f"not a condition: {node!r}")  # pragma: no cover


def holds(node: ConditionNode, scope: Mapping[str, Any]) -> bool:
    """Whether one condition node holds for the scope."""
    return compile_node(node)(scope)


def first_failure(nodes: Sequence[ConditionNode], scope: Mapping[str, Any]) -> ConditionNode | None:
    """The first top-level condition that does not hold, or None when all do."""
    return next((n for n in nodes if not holds(n, scope)), None)


def describe(node: ConditionNode) -> str:
    """A condition as the one-line text a human reads in explain output and the timeline."""
    if isinstance(node, Condition):
        return f"{node.field} {node.op} {node.value!r}"
    if isinstance(node, AllOf):
        return "all(" + ", ".join(describe(n) for n in node.all) + ")"
    if isinstance(node, AnyOf):
        return "any(" + ", ".join(describe(n) for n in node.any) + ")"
    if isinstance(node, NotOf):
        return f"not({describe(node.not_)})"
    raise TypeError(f"not a condition: {node!r}")  # pragma: no cover


def leaves(nodes: Iterable[ConditionNode]) -> Iterator[Condition]:
    """Every leaf test of the condition trees (the paths a `when` reads are their fields)."""
    for n in nodes:
        if isinstance(n, Condition):
            yield n
        elif isinstance(n, AllOf):
            yield from leaves(n.all)
        elif isinstance(n, AnyOf):
            yield from leaves(n.any)
        elif isinstance(n, NotOf):
            yield from leaves([n.not_])


def innermost_failure(node: ConditionNode, scope: Mapping[str, Any]) -> Condition | None:
    """The leaf test that made `node` fail, where one leaf is to blame (all-of chains); else None."""
    if isinstance(node, Condition):
        return None if holds(node, scope) else node
    if isinstance(node, AllOf):
        bad = next((n for n in node.all if not holds(n, scope)), None)
        return innermost_failure(bad, scope) if bad is not None else None
    return None
