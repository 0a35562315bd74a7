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


_Net = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_MAPPED_BLOCK = ipaddress.IPv6Network("::ffff:0:0/96")
_MAPPED_PREFIX = int(_MAPPED_BLOCK.network_address)


@lru_cache(maxsize=1024)
def _net(cidr: str) -> tuple[_Net, ...]:
    """The network, and its IPv4 form when it is written as IPv4-mapped IPv6 (`::ffff:10.0.0.0/104` is
    10.0.0.0/8); an IPv6 network holding the whole IPv4-mapped block (`::/0`) holds every IPv4 address through
    its mapped form (`_forms`)."""
    net = ipaddress.ip_network(cidr, strict=False)
    if net.version == 6 and net.subnet_of(_MAPPED_BLOCK):
        mapped = net.network_address.ipv4_mapped
        return net, ipaddress.IPv4Network((mapped, net.prefixlen - 96))
    return (net,)


@lru_cache(maxsize=4096)
def _forms(text: str) -> tuple[_Address, ...]:
    """The address and its other form: an IPv4-mapped IPv6 address's IPv4 form (`::ffff:10.0.0.1` is 10.0.0.1),
    an IPv4 address's IPv4-mapped form (10.0.0.1 is `::ffff:10.0.0.1`, so it is in `::/0` as that is). Nothing
    else crosses versions (IPv4-compatible `::a00:1` and NAT64 `64:ff9b::…` are other hosts); an address of one
    version is never in a network of the other (`in` says False, it does not raise)."""
    ip = ipaddress.ip_address(text)
    if ip.version == 4:
        return ip, ipaddress.IPv6Address(_MAPPED_PREFIX | int(ip))
    mapped = ip.ipv4_mapped
    return (ip,) if mapped is None else (ip, mapped)


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
        forms = _forms(a)
    except ValueError:
        return False
    nets = b if isinstance(b, list) else [b]
    return any(ip in net for n in nets for net in _net(str(n)) for ip in forms)


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
