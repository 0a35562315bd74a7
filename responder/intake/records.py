"""Which Kafka records a decoded webhook becomes, keyed by incident key, with their delivery (idempotency) keys.

* a Standard Webhooks delivery is one record; its key is the `webhook-id` (a reused id with another body is a replay);
* an Alertmanager group becomes one record per alert (the group with that alert only), each keyed by its own
  incident key and deduplicated on groupKey + status + fingerprint + startsAt;
* a Splunk alert is deduplicated on its search id (`sid`);
* anything else on the decoded event ids.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from responder.models.event import Event


@dataclass(frozen=True)
class Record:
    """One record to produce: value bytes, Kafka key, and the delivery key that makes a retry a no-op."""

    value: bytes
    key: bytes
    delivery: str
    digest: str | None  # when set, the same delivery key with another digest is a replay


def _hash(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def _alertmanager(source: str, body: bytes, doc: dict[str, Any], events: list[Event]) -> list[Record]:
    out = []
    for alert, event in zip(doc["alerts"], events, strict=True):
        status = str(alert.get("status") or doc.get("status"))
        delivery = "am:" + _hash(source, str(doc.get("groupKey")), status, str(alert.get("fingerprint")),
                                 str(alert.get("startsAt")))
        value = body if len(doc["alerts"]) == 1 else orjson.dumps({**doc, "alerts": [alert]})
        out.append(Record(value, event.incident_key.encode(), delivery, None))
    return out


def records_for(source: str, body: bytes, doc: Any, events: list[Event], webhook_id: str | None) -> list[Record]:
    """The records to produce for one accepted request (never empty: `events` is not empty)."""
    key = events[0].incident_key.encode()
    if webhook_id is not None:
        return [Record(body, key, f"wh:{_hash(source, webhook_id)}", hashlib.sha256(body).hexdigest())]
    if isinstance(doc, dict) and isinstance(doc.get("alerts"), list) and events[0].source == "alertmanager" \
            and len(doc["alerts"]) == len(events):
        return _alertmanager(source, body, doc, events)
    if isinstance(doc, dict) and events[0].source == "splunk" and doc.get("sid"):
        return [Record(body, key, f"splunk:{_hash(source, str(doc['sid']))}", None)]
    return [Record(body, key, "ev:" + _hash(source, *sorted(e.id for e in events)), None)]
