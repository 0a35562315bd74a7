"""The single operator table used by every condition."""

from __future__ import annotations

import fnmatch
import ipaddress
import operator
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

MISSING: Any = object()


@lru_cache(maxsize=4096)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@lru_cache(maxsize=4096)
def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern))


@lru_cache(maxsize=1024)
def _net(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(cidr, strict=False)


def num(a: Any, b: Any, cmp: Callable[[Any, Any], bool]) -> bool:
    """The ordering operators: numbers with numbers (never booleans), strings with strings; otherwise False."""
    ta, tb = type(a), type(b)
    if (ta is float or ta is int) and (tb is float or tb is int):  # the common case, answered first
        return cmp(a, b)
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    if isinstance(a, int | float) and isinstance(b, int | float):
        return cmp(a, b)
    if isinstance(a, str) and isinstance(b, str):
        return cmp(a, b)  # ISO times and labels compare lexically
    return False


def _cidr(a: Any, b: Any) -> bool:
    if not isinstance(a, str):
        return False
    try:
        ip = ipaddress.ip_address(a)
    except ValueError:
        return False
    nets = b if isinstance(b, list) else [b]
    return any(ip in _net(str(n)) for n in nets)


def _contains(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return b in a
    if isinstance(a, list | tuple):
        return b in a
    return False


OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a is not MISSING and a == b,
    "ne": lambda a, b: a is MISSING or a != b,
    "in": lambda a, b: a is not MISSING and isinstance(b, list) and a in b,
    "not_in": lambda a, b: a is MISSING or (isinstance(b, list) and a not in b),
    "glob": lambda a, b: isinstance(a, str) and _glob(str(b)).match(a) is not None,
    "regex": lambda a, b: isinstance(a, str) and _regex(str(b)).search(a) is not None,
    "gt": lambda a, b: num(a, b, operator.gt),
    "ge": lambda a, b: num(a, b, operator.ge),
    "lt": lambda a, b: num(a, b, operator.lt),
    "le": lambda a, b: num(a, b, operator.le),
    "exists": lambda a, b: (a is not MISSING and a is not None) == (b is None or bool(b)),
    "contains": _contains,
    "cidr": _cidr,
}


COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "gt": operator.gt, "ge": operator.ge, "lt": operator.lt, "le": operator.le}
"""The ordering operators' comparisons: `OPERATORS[op](a, b) == num(a, b, COMPARISONS[op])`."""


def validate_operand(op: str, value: Any) -> str | None:
    """Why `value` is not a valid operand for `op`, or None when it is."""
    if op not in OPERATORS:
        return f"unknown operator {op!r}; valid choices: {', '.join(sorted(OPERATORS))}"
    if op in ("in", "not_in") and not isinstance(value, list):
        return f"operator {op!r} needs a list value"
    if op == "exists" and value is not None and not isinstance(value, bool):
        return f"operator 'exists' takes true or false (or no value, meaning true), not {value!r}"
    if op == "regex":
        try:
            _regex(str(value))
        except re.error as exc:
            return f"invalid regex {value!r}: {exc}"
    if op == "cidr":
        try:
            for n in value if isinstance(value, list) else [value]:
                _net(str(n))
        except ValueError as exc:
            return f"invalid CIDR {value!r}: {exc}"
    return None
