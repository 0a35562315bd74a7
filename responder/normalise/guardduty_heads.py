"""GuardDuty's heads for the no-match prefilter (`registry.Head`, `registry.keyed_head`): a finding's source, type,
severity, time and threat without the rest of its Event, each equal to `guardduty.finding_to_event`'s
(tests/unit/test_prefilter.py)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from responder.models.event import Event
from responder.normalise import trusted
from responder.normalise.fields import parse_time, scored, text
from responder.normalise.guardduty import _is_finding
from responder.normalise.registry import head, keyed_head
from responder.normalise.threats import GUARDDUTY

HEAD_FIELDS = ("source", "type", "severity", "time", "threat")


def finding_head(f: dict[str, Any], envelope: dict[str, Any] | None = None) -> Event:
    """`finding_to_event`'s source, type, severity, time and threat alone (raises where it would, and more)."""
    env = envelope or {}
    for part in (f.get("service"), f.get("resource")):
        if part and not isinstance(part, dict):
            raise TypeError("guardduty: service and resource are objects")
    return trusted.head({
        "source": "guardduty",
        "type": text(f["type"]) or "unknown",  # as finding_to_event: never "None" or a container as text
        "severity": scored(float(f["severity"]), f["severity"]),
        "time": parse_time(f.get("updatedAt") or f.get("createdAt") or env.get("time")),
        "threat": GUARDDUTY.lookup(f["type"]),
    })


@head("guardduty.eventbridge", HEAD_FIELDS)
@head("guardduty.detail", HEAD_FIELDS)
def envelope_head(doc: Any) -> Event:
    """The head of an EventBridge envelope (or its `detail` alone)."""
    if not _is_finding(doc["detail"]):
        raise TypeError("guardduty envelope without a finding in detail")
    return finding_head(doc["detail"], doc)


@head("guardduty", HEAD_FIELDS)
def raw_head(doc: Any) -> Event:
    """The head of a raw finding."""
    return finding_head(doc)


KEYED_FIELDS = ("source", "type", "severity", "threat")  # the head's fields but the time: a function of the key
_KEY_CHARS = 256  # longest type remembered per key (the sender chooses it, up to the record size limit)


def finding_partial(key: Any) -> Event:
    """`finding_head`'s source, type, severity and threat from `finding_key`'s values alone."""
    finding_type, _, severity = key
    return trusted.head({
        "source": "guardduty",
        "type": finding_type.strip() or "unknown",
        "severity": scored(float(severity), severity),
        "threat": GUARDDUTY.lookup(finding_type),
    })


@keyed_head("guardduty", KEYED_FIELDS, finding_partial)
def finding_key(f: Any) -> Hashable | None:
    """The values `finding_partial` reads (type, and severity with its Python type, so that equal keys give equal
    events), after the checks `finding_head` makes; None for a type or severity not worth remembering."""
    for part in (f.get("service"), f.get("resource")):
        if part and not isinstance(part, dict):
            raise TypeError("guardduty: service and resource are objects")
    finding_type, severity = f["type"], f["severity"]
    kind = type(severity)
    if type(finding_type) is not str or len(finding_type) > _KEY_CHARS or not (
            kind is float or (kind is int and -2**63 <= severity < 2**64)):
        return None
    return finding_type, kind, severity


@keyed_head("guardduty.eventbridge", KEYED_FIELDS, finding_partial)
@keyed_head("guardduty.detail", KEYED_FIELDS, finding_partial)
def envelope_key(doc: Any) -> Hashable | None:
    """`finding_key` of an EventBridge envelope's finding (or of its `detail` alone)."""
    detail = doc["detail"]
    if not _is_finding(detail):
        raise TypeError("guardduty envelope without a finding in detail")
    return finding_key(detail)
