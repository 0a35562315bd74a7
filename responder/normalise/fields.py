"""Small typed readers shared by decoders: lookups, time parsing, severity scales, IP checks."""

from __future__ import annotations

import contextvars
import functools
import ipaddress
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from responder.errors import ValidationFailed
from responder.models.event import Severity

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RECEIVED: contextvars.ContextVar[datetime | None] = contextvars.ContextVar("received", default=None)
"""The record's receive time while it is decoded (`received_at`; set directly by `normalise.decode_doc`)."""


def dig(doc: Any, *path: str, default: Any = None) -> Any:
    """Follow dict keys; `default` when any step is missing or not a dict."""
    cur = doc
    for key in path:
        if not isinstance(cur, dict) or key not in cur:
            return default
        cur = cur[key]
    return cur


def text(value: Any) -> str | None:
    """A non-empty stripped string, or None (numbers are rendered, containers refused)."""
    if value is None or isinstance(value, dict | list | bool):
        return None
    out = str(value).strip()
    return out or None


def _from_epoch(value: int | float) -> datetime:
    magnitude = abs(value)
    if isinstance(value, int):
        # integers keep full precision: Falco's evt.time (ns) is beyond 2^53
        if magnitude >= 10**17:
            seconds, rest = divmod(value, 10**9)
            return _EPOCH + timedelta(seconds=seconds, microseconds=rest // 1000)
        if magnitude >= 10**14:
            seconds, rest = divmod(value, 10**6)
            return _EPOCH + timedelta(seconds=seconds, microseconds=rest)
        if magnitude >= 10**11:
            seconds, rest = divmod(value, 10**3)
            return _EPOCH + timedelta(seconds=seconds, milliseconds=rest)
        return _EPOCH + timedelta(seconds=value)
    if magnitude >= 1e17:
        return datetime.fromtimestamp(value / 1e9, UTC)
    if magnitude >= 1e14:
        return datetime.fromtimestamp(value / 1e6, UTC)
    if magnitude >= 1e11:
        return datetime.fromtimestamp(value / 1e3, UTC)
    return datetime.fromtimestamp(value, UTC)


def parse_time(value: Any) -> datetime:
    """UTC-aware time from ISO 8601 or epoch seconds, milliseconds or nanoseconds (by magnitude)."""
    if type(value) is str and value[-1:] == "Z":  # the common `…Z` form, parsed as-is (3.11 reads `Z`)
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass  # the general path below decides, with its own error
        else:
            if parsed.tzinfo is UTC:
                return parsed
    if isinstance(value, bool) or value is None:
        raise ValidationFailed(f"missing or invalid time: {value!r}")
    if isinstance(value, str) and value.strip().lstrip("-").replace(".", "", 1).isdigit():
        value = float(value) if "." in value else int(value)
    if isinstance(value, int | float):
        try:
            return _from_epoch(value)
        except (OverflowError, OSError, ValueError) as exc:
            raise ValidationFailed(f"epoch time out of range: {value!r}") from exc
    if isinstance(value, str):
        raw = value.strip()
        if raw.endswith(("Z", "z")):
            raw = raw[:-1] + "+00:00"
        if len(raw) > 5 and raw[-5] in "+-" and raw[-3] != ":" and raw[-4:].isdigit():
            raw = f"{raw[:-2]}:{raw[-2:]}"
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError as exc:
            raise ValidationFailed(f"unparsable time: {value!r}") from exc
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise ValidationFailed(f"invalid time: {value!r}")


@contextmanager
def received_at(when: datetime | None) -> Iterator[None]:
    """Within the block, `time_or_received` falls back to `when` (the record's broker timestamp)."""
    token = RECEIVED.set(when)
    try:
        yield
    finally:
        RECEIVED.reset(token)


def time_or_received(*candidates: Any) -> tuple[datetime, bool]:
    """The first parsable candidate time, else the record's receive time; the flag says which."""
    for value in candidates:
        if value is None or value == "":
            continue
        try:
            return parse_time(value), False
        except ValidationFailed:
            continue
    return RECEIVED.get() or datetime.now(UTC), True


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def _regex_quad(family: int, value: str) -> bytes:
    if type(value) is not str or not _IPV4.fullmatch(value):
        raise ValueError("not a dotted quad")
    return b""


_PROBES = ("1.2.3.4", "0.0.0.1", "255.255.255.255", "10.0.0.1", "01.2.3.4", "1.2.3.04", "00.1.1.1", "1.2.3",
           "1.2.3.4.", ".1.2.3.4", "1..2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.256", "1000.1.1.1", " 1.2.3.4",
           "1.2.3.4 ", "\u0661.2.3.4", "1.2.3.4\x00", "0x1.2.3.4", "+1.2.3.4", "", "1.2.3.4/8", "1.2.3.-4")


def _accepts(check: Any, value: str) -> bool:
    try:
        check(socket.AF_INET, value)
    except (OSError, ValueError, TypeError):
        return False
    return True


# `check_quad(socket.AF_INET, value)` returns for exactly the dotted quads `valid_ip` accepts (ASCII digits, no
# leading zero, four octets <= 255) and raises OSError, ValueError or TypeError otherwise. The C library's
# inet_pton is a third of the regex's cost; it is used only where it agrees with the regex on every probe.
check_quad = socket.inet_pton if all(_accepts(socket.inet_pton, p) == _accepts(_regex_quad, p) for p in _PROBES) \
    else _regex_quad


def valid_ip(value: Any) -> str | None:
    """The address when `value` is a syntactically valid IPv4/IPv6 address, else None (never raises)."""
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    if ":" not in value:  # dotted quad: ASCII digits, no leading zero, each octet <= 255
        return value if _IPV4.fullmatch(value) else None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


# Canonical 0-10 score per label, and the words sources use for each label.
LABEL_SCORES = {"info": 0.0, "low": 2.0, "medium": 5.0, "high": 7.5, "critical": 9.5}
_SYNONYMS = {
    "info": ("info", "informational", "information", "debug", "none", "unknown", "ok"),
    "low": ("low", "minor", "notice"),
    "medium": ("medium", "moderate", "warning", "warn"),
    "high": ("high", "error", "major", "severe", "important"),
    "critical": ("critical", "fatal", "emergency", "alert", "page", "crit", "disaster"),
}
_WORD_TO_LABEL = {word: label for label, words in _SYNONYMS.items() for word in words}
_BANDS = {"info": (0.0, 1.0), "low": (1.0, 4.0), "medium": (4.0, 7.0), "high": (7.0, 9.0), "critical": (9.0, 10.0)}


@functools.lru_cache(maxsize=4096, typed=True)
def scored(score: float, original: str | int | float | None = None) -> Severity:
    """`Severity.of`, memoised: Severity is frozen and sources repeat a handful of values."""
    return Severity.of(score, original=original)


def label_of(word: Any) -> str | None:
    """The canonical label for a source's severity word (`Warning` → medium), or None if unknown."""
    key = text(word)
    return _WORD_TO_LABEL.get(key.lower()) if key else None


def _fits(label: str, score: float) -> bool:
    low, high = _BANDS[label]
    return low <= score < high or (label == "critical" and 9.0 <= score <= 10.0)


def in_band(word: Any, score: float) -> bool:
    """Whether `score` (0-10) lies in the band of the label `word` names (False for an unknown word, NaN)."""
    label = label_of(word)
    return label is not None and _fits(label, score)


def severity_from_label(word: Any, *, hint: float | None = None, default: float | None = None) -> Severity:
    """Severity from a label word; `hint` (0-10) is kept when it falls in the label's band."""
    label = label_of(word)
    if label is None:
        if hint is not None:
            return Severity.of(hint, original=word)
        if default is None:
            raise ValidationFailed(f"unknown severity {word!r}")
        return Severity.of(default, original=word)
    if hint is not None and _fits(label, hint):
        return Severity.of(float(hint), original=word)
    return Severity.of(LABEL_SCORES[label], original=word)


def number(value: Any) -> float | None:
    """A float from a number or numeric string, else None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
