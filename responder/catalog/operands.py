"""Condition values that can never match the typed event field they test (checked at load).

YAML turns unquoted `123456789012` into a number, `no` into false and `0123` into octal, so
`{field: event.account, op: eq, value: 123456789012}` compares a string with an int and never matches,
silently; so does `{field: event.severity.score, op: ge, value: "7"}`, or `event.severity.label eq hihg`.
Free-form paths (`event.attributes.…`, step results) are not checked: their types are the decoder's.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

from pydantic import AwareDatetime

from responder.rules.paths import event_leaf

EQUALITY = ("eq", "ne", "in", "not_in")
ORDERING = ("gt", "ge", "lt", "le")


def _kind(annotation: Any) -> str | None:
    """`text`, `number` or None (not checked) for a field's type."""
    if annotation is str or annotation is AwareDatetime or (isinstance(annotation, type) and
                                                           issubclass(annotation, datetime | Enum)):
        return "text"  # a time reads as ISO text, an enum as its value
    if annotation in (int, float):
        return "number"
    return None


def _fits(kind: str, value: Any) -> bool:
    if kind == "text":
        return isinstance(value, str)
    return isinstance(value, int | float) and not isinstance(value, bool)


def operand_type_problem(field: str, op: str, value: Any) -> str | None:
    """Why `value` can never match `field` under `op` (wrong YAML type, or not one of an enum's values)."""
    if op not in EQUALITY and op not in ORDERING:
        return None
    annotation = event_leaf(field)
    kind = _kind(annotation)
    if kind is None:
        return None
    values = value if op in ("in", "not_in") and isinstance(value, list) else [value]
    choices = [m.value for m in annotation] if isinstance(annotation, type) and issubclass(annotation, Enum) else None
    for v in values:
        if v is None and op in EQUALITY:
            continue  # `eq null`: the field is unset
        if not _fits(kind, v):
            quote = (" (quote it in YAML: unquoted digits are a number, yes/no/on/off a boolean)"
                     if kind == "text" else "")
            return (f"{field} is {'text' if kind == 'text' else 'a number'}; {v!r} ({type(v).__name__}) never equals "
                    f"or compares with it{quote}")
        if choices is not None and op in EQUALITY and v not in choices:
            return f"{field}: {v!r} is not one of its values; valid choices: {', '.join(choices)}"
    return None
