"""How a condition on `event.time` reads its value, which reads as the view writes it: UTC text, `…Z`.

A full time with its zone written another way (`2026-01-01T00:00:00+00:00`, as `runbooks explain` printed it
before 2026-12-07, or `05:30:00+05:30`) is rewritten in that form when the condition is compiled, never in the
Runbook (its digest is unchanged), so `eq`, `ne`, `in`, `not_in` and the index's anchor compare like with like.
The ordering operators compare instants when the value is a full time (`…00.500000Z` is after `…00Z`, which text
sorts before it) and text otherwise, so a prefix such as `2026-01` orders as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from responder.models.view import json_time
from responder.rules.operators import num

TIME = "event.time"
"""The one typed time a condition reads (responder/catalog/operands.py checks its values at load)."""
EQUALITY = ("eq", "ne", "in", "not_in")
ORDERING = ("gt", "ge", "lt", "le")


def instant(value: Any) -> datetime | None:
    """`value` as an aware datetime in UTC when it is text holding a full time with its zone; else None (a prefix,
    a time without its zone, a time past year 9999 or before year 1 in UTC, anything not text)."""
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value)
        return at.astimezone(UTC) if at.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None


def canonical_time(value: Any) -> Any:
    """A full time with its zone as the view writes it (`…Z`); any other value as it is."""
    at = instant(value)
    return value if at is None else json_time(at)


def time_operand(field: str, op: str, value: Any) -> Any:
    """The value a condition compares `field` with: an `event.time` time in the view's form for the equality and
    ordering operators; every other value as written."""
    if field != TIME:
        return value
    if op in ("in", "not_in") and isinstance(value, list):
        return [canonical_time(v) for v in value]
    return canonical_time(value) if op in EQUALITY or op in ORDERING else value


def time_order(get: Callable[[Mapping[str, Any]], Any], cmp: Callable[[Any, Any], bool],
               value: Any) -> Callable[[Mapping[str, Any]], bool]:
    """An ordering test on `event.time`: instants when `value` is a full time (the event's text read back, a C
    parse), text (`num`) for a prefix."""
    at = instant(value)
    if at is None:
        return lambda scope: num(get(scope), value, cmp)
    parse = datetime.fromisoformat

    def check(scope: Mapping[str, Any]) -> bool:
        text = get(scope)
        if type(text) is not str:
            return False
        try:
            return cmp(parse(text), at)
        except (ValueError, TypeError):  # not the view's time (text, or a time without its zone, in a `when` scope)
            return False

    return check
