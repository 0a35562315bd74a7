"""Evaluate conditions (all / any / not trees of operator tests) against an event view."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from responder.models.runbook import AllOf, AnyOf, Condition, ConditionNode, NotOf
from responder.rules.operators import MISSING, OPERATORS


def lookup(view: Mapping[str, Any], path: str) -> Any:
    """Read a dotted path (`resource.access_key.id`, `resources.0.id`); MISSING when absent."""
    cur: Any = view
    for part in path.split("."):
        if isinstance(cur, Mapping):
            if part not in cur:
                return MISSING
            cur = cur[part]
        elif isinstance(cur, list | tuple) and part.isdigit():
            index = int(part)
            if index >= len(cur):
                return MISSING
            cur = cur[index]
        else:
            return MISSING
    return cur


def holds(node: ConditionNode, view: Mapping[str, Any]) -> bool:
    """Whether one condition node holds for the view."""
    if isinstance(node, Condition):
        return OPERATORS[node.op](lookup(view, node.field), node.value)
    if isinstance(node, AllOf):
        return all(holds(n, view) for n in node.all)
    if isinstance(node, AnyOf):
        return any(holds(n, view) for n in node.any)
    if isinstance(node, NotOf):
        return not holds(node.not_, view)
    raise TypeError(f"not a condition: {node!r}")  # pragma: no cover


def first_failure(nodes: Sequence[ConditionNode], view: Mapping[str, Any]) -> ConditionNode | None:
    """The first top-level condition that does not hold, or None when all do."""
    return next((n for n in nodes if not holds(n, view)), None)
