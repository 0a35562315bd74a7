"""Raw bytes → Events: one decoder per source format, chosen by the record's shape."""

from __future__ import annotations

from typing import Any

import orjson

from responder.errors import DecodeError, EventRejected, ValidationFailed
from responder.models.event import Event
from responder.normalise import guardduty
from responder.normalise.registry import detect, formats

DEFAULT_MAX_BYTES = 1024 * 1024

__all__ = ["DEFAULT_MAX_BYTES", "decode_doc", "formats", "guardduty", "normalise"]


def decode_doc(doc: Any, fmt: str | None = None) -> list[Event]:
    """Events from an already-parsed document, by detected shape or the named format."""
    chosen = formats()[fmt] if fmt else detect(doc)
    try:
        return chosen.decode(doc)
    except EventRejected:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValidationFailed(f"{chosen.name}: {exc.__class__.__name__}: {exc}") from exc


def normalise(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, fmt: str | None = None) -> list[Event]:
    """Decode one raw record into Events; raise an EventRejected subclass for poison."""
    if len(data) > max_bytes:
        raise DecodeError(f"record of {len(data)} bytes exceeds the limit of {max_bytes}")
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"not JSON: {exc}") from exc
    return decode_doc(doc, fmt)
