"""Raw bytes → Events: one decoder per source format, chosen by the record's shape.

Detection tries formats in registration order; every shape test is specific enough that the
order does not change the result (tests/unit/test_decoders.py::test_detection_is_unambiguous_on_fixtures
checks this).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from datetime import datetime
from typing import Any

import orjson

from responder.errors import EventRejected, NotJson, TooLarge, UnknownShape, ValidationFailed
from responder.models.event import Event

# isort: off
from responder.normalise import (  # noqa: F401 - imported to register their decoders; GuardDuty first (hot path)
    guardduty,
    guardduty_heads,
    securityhub,
    securityhub_v2,
    cloudtrail,
    cloudwatch,
    drift,
    siem,
    ocsf,
    falco,
    sagemaker,
    webhooks,
)
# isort: on
from responder.normalise.assemble import each_part
from responder.normalise.fields import RECEIVED
from responder.normalise.guardduty_fast import event as _guardduty_lane
from responder.normalise.registry import KEYED, detect, formats, head_of, known

DEFAULT_MAX_BYTES = 1024 * 1024

__all__ = ["DEFAULT_MAX_BYTES", "decode_doc", "decoders", "formats", "head", "keyed", "known", "normalise", "parse",
           "parse_documents"]


def _decode_one(doc: Any, fmt: str | None) -> list[Event]:
    chosen = detect(doc, fmt)
    try:
        return chosen.decode(doc)
    except EventRejected:
        raise
    # RecursionError: a record nested deeper than the interpreter's limit (orjson reads 1,024 levels) is poison too
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError) as exc:
        raise ValidationFailed(f"{chosen.name}: {exc.__class__.__name__}: {exc}") from exc


def decode_doc(doc: Any, fmt: str | None = None, *, received: datetime | None = None) -> list[Event]:
    """Events from an already-parsed document (a JSON array is decoded element by element).

    `fmt` forces a format or family (per-topic `topic_formats`); `received` is the time used by
    formats that carry none (the record's broker timestamp).
    """
    if fmt is None and type(doc) is dict and doc.get("source") == "aws.guardduty":  # the hot path, undetected:
        detail = doc.get("detail")  # `detect` gives it to `guardduty.decode_envelope` (the first format), which
        if type(detail) is dict:  # returns the lane's Event (`_is_finding`'s four keys the lane reads itself);
            event = _guardduty_lane(detail, doc)  # it reads no `received`
            if event is not None:
                return [event]
    if received is None and not isinstance(doc, list):
        return _decode_one(doc, fmt)  # no context to set
    token = RECEIVED.set(received)  # what `received_at` does, minus a generator per record (the service's path)
    try:
        if isinstance(doc, list):
            if not doc:
                raise UnknownShape("empty JSON array")
            return each_part("element", doc, lambda item: _decode_one(item, fmt))
        return _decode_one(doc, fmt)
    finally:
        RECEIVED.reset(token)


def decoders(doc: Any, fmt: str | None = None) -> list[str | None]:
    """The name of the format `decode_doc(doc, fmt)` decodes `doc` with (a JSON array: each element's, in order, as
    each is decoded on its own); None for one no format takes (`UnknownShape`).

    It is `detect`, the choice `decode_doc`, `head` and `keyed` make (GuardDuty's lane takes only what `detect` gives
    `guardduty.eventbridge`). The intake compares its own choice with `responder run`'s before it signs a record.
    """
    out: list[str | None] = []
    for part in doc if isinstance(doc, list) else (doc,):
        try:
            out.append(detect(part, fmt).name)
        except UnknownShape:
            out.append(None)
    return out


def parse(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """The JSON document of one raw record; TooLarge or NotJson for poison."""
    if len(data) > max_bytes:
        raise TooLarge(f"record of {len(data)} bytes exceeds the limit of {max_bytes}")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise NotJson(f"not JSON: {exc}") from exc


def normalise(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, fmt: str | None = None,
              received: datetime | None = None) -> list[Event]:
    """Decode one raw record into Events; raise an EventRejected subclass for poison."""
    if len(data) > max_bytes:  # `parse`, inline (a call less per record)
        raise TooLarge(f"record of {len(data)} bytes exceeds the limit of {max_bytes}")
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise NotJson(f"not JSON: {exc}") from exc
    return decode_doc(doc, fmt, received=received)


def head(doc: Any, fmt: str | None = None) -> tuple[Event, frozenset[str]] | None:
    """The partial event of a document whose format has a head (`registry.Head`) and the fields it holds; None
    when there is no head or it cannot read the document (then only `decode_doc` decides)."""
    if isinstance(doc, list):
        return None
    try:
        found = head_of(detect(doc, fmt).name)
        return (found.build(doc), found.fields) if found is not None else None
    except Exception:  # noqa: BLE001 - anything the head cannot read is left to the full decoder
        return None


def keyed(doc: Any, fmt: str | None = None) -> tuple[Callable[[Any], Event], Hashable, frozenset[str]] | None:
    """A document's keyed head (`registry.keyed_head`): its `from_key`, the document's key and the fields
    `from_key` builds; None when the format has no keyed head or it cannot key this document (then `head`
    decides)."""
    if type(doc) is not dict:
        return None
    try:
        found = KEYED.get(detect(doc, fmt).name)
        if found is None:
            return None
        get_key, build, fields = found
        key = get_key(doc)
    except Exception:  # noqa: BLE001 - anything the head cannot read is left to the full decoder
        return None
    return (build, key, fields) if key is not None else None


def parse_documents(data: bytes) -> list[Any]:
    """The documents in a file: one JSON value (object or array), or JSON Lines (one value per line)."""
    try:
        return [orjson.loads(data)]
    except orjson.JSONDecodeError as first:
        lines = [line for line in data.splitlines() if line.strip()]
        if len(lines) < 2:
            raise NotJson(f"not JSON: {first}") from first
        docs = []
        for number, line in enumerate(lines, 1):
            try:
                docs.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise NotJson(f"line {number}: not JSON: {exc}") from exc
        return docs
