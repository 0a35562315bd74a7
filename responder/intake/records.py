"""Which Kafka records a decoded webhook becomes, keyed by incident key, with their delivery (idempotency) keys.

Every record holds the events of one incident key only, so one resource's alerts stay ordered on one partition:
a body whose events share a key is one record (the body as received); a JSON array, or an Alertmanager group,
with several keys becomes one record per key holding that key's elements (alerts) in their order; an
Alertmanager group inside an array is split per key too. One JSON object that decodes to several keys and is
neither (alone, or as an array element) cannot be split: it stays one record (or element), keyed by its first
key; an array element that decodes to no event goes with the array's first key.

The Kafka key is the incident key, or, over MAX_KEY_BYTES (it comes from the payload), its SHA-256 in hex: the key
only chooses the partition, so the same incident key still lands on one, and the record's headroom above
`intake_max_body_bytes` (64 KiB) holds.

* a Standard Webhooks delivery is deduplicated on its `webhook-id` (per key when split); a reused id with another
  body is a replay, refused before splitting (`webhook_delivery`, remembered once per delivery);
* an Alertmanager group becomes one record per alert (the group with that alert only), each keyed by its own
  incident key and deduplicated on groupKey + status + fingerprint (else its event id) + startsAt;
* a Splunk alert is deduplicated on its search id (`sid`), when it is one (`assemble.given_id`), and its `result`: a
  search sends every result it alerts on under one `sid` (real-time, "for each result"), each a distinct alert;
* anything else on the decoded event ids of each record.

Splitting copies an Alertmanager group (its labels, annotations and the rest, all but `alerts`) into every record it
becomes, so a body of many alerts and large common annotations would make records many times its size: before
building any, the records' total is bounded (`check_size`: 413 over SPLIT_FACTOR × `intake_max_body_bytes`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from responder.intake.problems import Problem
from responder.models.event import Event
from responder.normalise import decode_doc
from responder.normalise.assemble import canonical, given_id


@dataclass(frozen=True)
class Record:
    """One record to produce: value bytes, Kafka key, and the delivery key that makes a retry a no-op."""

    value: bytes
    key: bytes
    delivery: str
    digest: str | None  # when set, the same delivery key with another digest is a replay


MAX_KEY_BYTES = 1024
SPLIT_FACTOR = 8
"""A request's records total at most this many times `intake_max_body_bytes` (as `check_size` counts them)."""


def kafka_key(incident_key: str) -> bytes:
    """The record's Kafka key: the incident key, hashed when longer than MAX_KEY_BYTES."""
    key = incident_key.encode()
    return key if len(key) <= MAX_KEY_BYTES else b"sha256:" + hashlib.sha256(key).hexdigest().encode()


def _hash(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def webhook_delivery(source: str, webhook_id: str, body: bytes) -> tuple[str, str]:
    """The key and body digest that bind a Standard Webhooks delivery id to its body, whatever its split."""
    return f"whid:{_hash(source, webhook_id)}", hashlib.sha256(body).hexdigest()


def check_size(body: bytes, groups: list[tuple[dict[str, Any], int]], body_limit: int) -> None:
    """413 too-large, before any record is built, when the records would total more than SPLIT_FACTOR × `body_limit`
    bytes: the body plus, for each Alertmanager group split into n > 1 records, n - 1 more copies of its compact JSON
    without its alerts (each record holds the group with some of its alerts)."""
    total = len(body) + sum((copies - 1) * len(orjson.dumps({**group, "alerts": []}))
                            for group, copies in groups if copies > 1)
    if total > SPLIT_FACTOR * body_limit:
        raise Problem(413, "too-large", f"split into one record per alert (or incident key), this Alertmanager "
                      f"notification would total {total} bytes, over {SPLIT_FACTOR} × intake_max_body_bytes "
                      f"({SPLIT_FACTOR * body_limit}): nothing produced; send fewer alerts per notification "
                      "(max_alerts) or smaller common labels and annotations")


def _alertmanager(source: str, body: bytes, doc: dict[str, Any], events: list[Event], body_limit: int) -> list[Record]:
    check_size(body, [(doc, len(doc["alerts"]))], body_limit)
    out = []
    for alert, event in zip(doc["alerts"], events, strict=True):
        status = str(alert.get("status") or doc.get("status"))
        # an alert without a usable fingerprint is told apart by its event id (its digest), never by "None"
        delivery = "am:" + _hash(source, str(doc.get("groupKey")), status,
                                 given_id(alert.get("fingerprint")) or event.id, str(alert.get("startsAt")))
        value = body if len(doc["alerts"]) == 1 else orjson.dumps({**doc, "alerts": [alert]})
        out.append(Record(value, kafka_key(event.incident_key), delivery, None))
    return out


def _is_alertmanager(doc: Any, events: list[Event]) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("alerts"), list) and events[0].source == "alertmanager" \
        and len(doc["alerts"]) == len(events)


def _keys_if_split(item: Any, decoded: list[Event]) -> int:
    """How many records an Alertmanager group in an array is split into (its incident keys); 0 for anything else."""
    keys = len({e.incident_key for e in decoded})
    return keys if keys > 1 and _is_alertmanager(item, decoded) else 0


def _parts(body: bytes, doc: Any, events: list[Event], fmt: str | None,
           body_limit: int) -> list[tuple[bytes, bytes, list[Event]]]:
    """(key, value, events) per incident key, in first-seen order; the body itself when there is one key."""
    if len({e.incident_key for e in events}) == 1 or not (isinstance(doc, list) or _is_alertmanager(doc, events)):
        return [(kafka_key(events[0].incident_key), body, events)]
    if isinstance(doc, list):
        items: list[Any] = doc
        per_item = [decode_doc(item, fmt) for item in doc]  # as decode_doc decoded the array, element by element
        check_size(body, [(item, _keys_if_split(item, d)) for item, d in zip(doc, per_item, strict=True)], body_limit)
    else:
        items, per_item = doc["alerts"], [[e] for e in events]
        check_size(body, [(doc, len({e.incident_key for e in events}))], body_limit)
    grouped: dict[str, tuple[list[Any], list[Event]]] = {}
    for item, decoded in _split_groups(items, per_item, isinstance(doc, list)):
        group = grouped.setdefault((decoded or events)[0].incident_key, ([], []))
        group[0].append(item)
        group[1].extend(decoded)
    return [(kafka_key(key), orjson.dumps(sub if isinstance(doc, list) else {**doc, "alerts": sub}), evs)
            for key, (sub, evs) in grouped.items()]


def _split_groups(items: list[Any], per_item: list[list[Event]], in_array: bool) -> list[tuple[Any, list[Event]]]:
    """(element, its events); an Alertmanager group in an array over several keys becomes one group per key."""
    out: list[tuple[Any, list[Event]]] = []
    for item, decoded in zip(items, per_item, strict=True):
        if not (in_array and _keys_if_split(item, decoded)):
            out.append((item, decoded))
            continue
        by_key: dict[str, tuple[list[Any], list[Event]]] = {}
        for alert, event in zip(item["alerts"], decoded, strict=True):
            part = by_key.setdefault(event.incident_key, ([], []))
            part[0].append(alert)
            part[1].append(event)
        out += [({**item, "alerts": alerts}, evs) for alerts, evs in by_key.values()]
    return out


def records_for(source: str, body: bytes, doc: Any, events: list[Event], webhook_id: str | None,
                fmt: str | None = None, *, body_limit: int) -> list[Record]:
    """The records to produce for one accepted request (never empty: `events` is not empty); 413 (`check_size`)
    before building any when splitting would make them total more than SPLIT_FACTOR × `body_limit`."""
    if webhook_id is not None:
        digest = hashlib.sha256(body).hexdigest()
        parts = _parts(body, doc, events, fmt, body_limit)
        if len(parts) == 1:
            return [Record(body, parts[0][0], f"wh:{_hash(source, webhook_id)}", digest)]
        return [Record(value, key, f"wh:{_hash(source, webhook_id, key.decode())}", digest)
                for key, value, _ in parts]
    if _is_alertmanager(doc, events):
        return _alertmanager(source, body, doc, events, body_limit)
    sid = given_id(doc.get("sid")) if isinstance(doc, dict) and events[0].source == "splunk" else None
    if sid is not None:  # a blank, boolean or `digest:` sid is none (as in the decoder): the event ids below are
        result = canonical(doc.get("result"))  # a redelivery's is the same, however deep
        return [Record(body, kafka_key(events[0].incident_key), f"splunk:{_hash(source, sid, result)}", None)]
    return [Record(value, key, "ev:" + _hash(source, *sorted(e.id for e in evs)), None)
            for key, value, evs in _parts(body, doc, events, fmt, body_limit)]
