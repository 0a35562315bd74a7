"""Condition values that can never match the typed event field they test (checked at load).

YAML turns unquoted `123456789012` into a number, `no` into false and `0123` into octal, so
`{field: event.account, op: eq, value: 123456789012}` compares a string with an int and never matches,
silently; so does `{field: event.severity.score, op: ge, value: "7"}`, or `event.severity.label eq hihg`.
So does `regex`, `glob` or `cidr` on a field that is not text (`event.severity.score`), `contains` whose value is not
what the field holds (`contains: 1111` on the text `event.account`), an `event.time` compared for equality with a
value that is not a time with its zone, and a `glob`, `regex` or `contains` on it written with a numeric offset
(`*+00:00` never matches the event's `2026-01-01T00:00:00Z`; a full time with an offset in `eq`, `in` or `ge` is
compared in that form, responder/rules/times.py).
Free-form paths (`event.attributes.…`, step results) are not checked: their types are the decoder's.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import Enum
from typing import Any, get_args, get_origin

from pydantic import AwareDatetime, BaseModel

from responder.rules.paths import event_leaf, not_single
from responder.rules.times import instant

EQUALITY = ("eq", "ne", "in", "not_in")
ORDERING = ("gt", "ge", "lt", "le")
TEXT_ONLY = ("glob", "regex", "cidr")
"""Operators that test one text value: never true of a number, a list, a map or an object."""
_QUOTE = " (quote it in YAML: unquoted digits are a number, yes/no/on/off a boolean)"


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


def _shape(annotation: Any) -> str | None:
    """What a typed field holding more than one value is (`a list`, `a map`, `an object`), or None."""
    origin = get_origin(annotation)
    if origin in (list, tuple):
        return "a list"
    if origin is dict:
        return "a map"
    return "an object" if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _described(kind: str | None, shape: str | None) -> str:
    return shape or ("text" if kind == "text" else "a number")


def _text_only_problem(field: str, op: str, annotation: Any, kind: str | None) -> str | None:
    shape = _shape(annotation)
    if kind == "text" or (kind is None and shape is None):
        return None
    below = not_single(field)
    choices = (f"test a single value below it: {', '.join(below)}" if below else
               f"valid operators on it: {', '.join((*EQUALITY, *ORDERING, 'exists'))}")
    return f"{field} is {_described(kind, shape)}; {op!r} tests text and never matches it; {choices}"


def _contains_problem(field: str, annotation: Any, kind: str | None, value: Any) -> str | None:
    shape = _shape(annotation)
    if get_origin(annotation) in (list, tuple):  # a list holds the value: it must be of the items' kind
        item = _kind(get_args(annotation)[0])
        if item is None or _fits(item, value):
            return None
        return (f"{field} is a list of {_described(item, None)}; {value!r} ({type(value).__name__}) is never one of "
                f"its items{_QUOTE if item == 'text' else ''}")
    if kind == "text":
        if isinstance(value, str):
            return None
        return (f"{field} is text; 'contains' looks for text in it and {value!r} ({type(value).__name__}) is not "
                f"text{_QUOTE}")
    if kind is None and shape is None:
        return None
    return (f"{field} is {_described(kind, shape)}; 'contains' tests text or a list and never matches it; valid "
            f"operators on it: {', '.join((*EQUALITY, *ORDERING, 'exists')) if shape is None else 'exists'}")


def _time_problem(field: str, value: Any) -> str | None:
    """Why an equality `value` can never equal an event's time: it is not a full time with its zone (a full time
    written with an offset, `+00:00`, is compared in the `…Z` form: responder/rules/times.py)."""
    if instant(value) is not None:
        return None
    return f"{field}: {value!r} is not a time with its zone; an event's time reads as UTC text: 2026-01-01T00:00:00Z"


_OFFSET = re.compile(r"(?:\\?[+-]|\[[+-]{1,2}\])(\d\d):(\d\d)")  # `+00:00`, `-05:00`, regex `\+00:00`, `[+-]00:00`


def _offset_problem(field: str, op: str, value: Any) -> str | None:
    """Why a `glob`, `regex` or `contains` value written with a numeric offset never matches an event's `…Z` time."""
    if not isinstance(value, str) or not (found := _OFFSET.findall(value)):
        return None
    utc = all(hh == mm == "00" for hh, mm in found)
    fix = (f"write '{_OFFSET.sub('Z', value)}'" if utc else
           "convert the time to UTC and write it with Z (2026-01-01T05:30:00+05:30 is 2026-01-01T00:00:00Z)")
    return (f"{field} reads as UTC text ending in Z (2026-01-01T00:00:00Z), never with a numeric offset; {op} "
            f"'{value}' never matches it: {fix}")


def operand_type_problem(field: str, op: str, value: Any) -> str | None:
    """Why `value` can never match `field` under `op` (wrong YAML type, not one of an enum's values, a text operator
    on a field that is not text, a `contains` value the field never holds, a time not written as times read)."""
    annotation = event_leaf(field)
    kind = _kind(annotation)
    if annotation is AwareDatetime and op in ("glob", "regex", "contains"):
        offset = _offset_problem(field, op, value)
        if offset:
            return offset
    if op in TEXT_ONLY:
        return _text_only_problem(field, op, annotation, kind)
    if op == "contains":
        return _contains_problem(field, annotation, kind, value)
    if op not in EQUALITY and op not in ORDERING:
        return None
    if kind is None:
        return None
    values = value if op in ("in", "not_in") and isinstance(value, list) else [value]
    choices = [m.value for m in annotation] if isinstance(annotation, type) and issubclass(annotation, Enum) else None
    for v in values:
        if v is None and op in EQUALITY:
            continue  # `eq null`: the field is unset
        if not _fits(kind, v):
            return (f"{field} is {'text' if kind == 'text' else 'a number'}; {v!r} ({type(v).__name__}) never equals "
                    f"or compares with it{_QUOTE if kind == 'text' else ''}")
        if choices is not None and op in EQUALITY and v not in choices:
            return f"{field}: {v!r} is not one of its values; valid choices: {', '.join(choices)}"
        problem = _time_problem(field, v) if annotation is AwareDatetime and op in EQUALITY and v is not None else None
        if problem:  # an ordering value that is not a full time is a prefix (`2026-01`): it orders as text
            return problem
    return None
