"""Small typed readers shared by decoders: time parsing, safe lookups."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from responder.errors import ValidationFailed


def dig(doc: Any, *path: str, default: Any = None) -> Any:
    """Follow dict keys; `default` when any step is missing or not a dict."""
    cur = doc
    for key in path:
        if not isinstance(cur, dict) or key not in cur:
            return default
        cur = cur[key]
    return cur


def parse_time(value: Any) -> datetime:
    """UTC-aware time from ISO 8601 or epoch seconds, milliseconds or nanoseconds (by magnitude)."""
    if isinstance(value, bool) or value is None:
        raise ValidationFailed(f"missing or invalid time: {value!r}")
    if isinstance(value, str) and value.strip().lstrip("-").replace(".", "", 1).isdigit():
        value = float(value) if "." in value else int(value)
    if isinstance(value, int | float):
        magnitude = abs(value)
        if magnitude >= 1e17:
            seconds = value / 1e9
        elif magnitude >= 1e14:
            seconds = value / 1e6
        elif magnitude >= 1e11:
            seconds = value / 1e3
        else:
            seconds = float(value)
        return datetime.fromtimestamp(seconds, UTC)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        if len(text) > 5 and text[-5] in "+-" and text[-3] != ":" and text[-4:].isdigit():
            text = f"{text[:-2]}:{text[-2:]}"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValidationFailed(f"unparsable time: {value!r}") from exc
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise ValidationFailed(f"invalid time: {value!r}")
