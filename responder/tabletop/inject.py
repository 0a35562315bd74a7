"""Injects and decisions as records: event files with world ids bound, signed, repeated, duplicated, reordered."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from responder.auth import sign, signed_headers
from responder.models.approval import ApprovalDecision
from responder.tabletop.eventfile import read_event
from responder.tabletop.models import REF, Decision, Inject, Playbook, Signature, Tamper
from responder.tabletop.world import Bindings


@dataclass(frozen=True)
class Record:
    """One Kafka record to deliver."""

    topic: str
    value: bytes
    key: bytes | None
    headers: list[tuple[str, bytes]]


def iso(epoch: float) -> str:
    """RFC 3339 with milliseconds and a Z, as the alert producers write it."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def resolve(value: Any, bindings: Bindings, now: float) -> Any:
    """Replace `${now}`, `${now_ms}` and `${world.…}` references (the whole string), recursively."""
    if isinstance(value, str):
        match = REF.match(value)
        if match is None:
            return value
        ref = match.group(1)
        if ref == "now":
            return iso(now)
        if ref == "now_ms":
            return int(now * 1000)
        return bindings.resolve(ref)
    if isinstance(value, dict):
        return {k: resolve(v, bindings, now) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, bindings, now) for v in value]
    return value


def set_path(doc: Any, path: str, value: Any) -> None:
    """Set `a.b.0.c` in a JSON document (creating mappings on the way)."""
    parts = path.split(".")
    node = doc
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def get_path(doc: Any, path: str) -> Any:
    """Read `a.b.0.c` (None when absent)."""
    node = doc
    for part in path.split("."):
        if isinstance(node, list):
            node = node[int(part)] if part.isdigit() and int(part) < len(node) else None
        elif isinstance(node, dict):
            node = node.get(part)
        else:
            return None
    return node


def inject_records(inject: Inject, base: Path, bindings: Bindings, now: float, topics: dict[str, str],
                   signing_keys: dict[str, str]) -> list[tuple[float, Record]]:
    """The records of one inject with their virtual offsets from `now` (repeats spaced by `every`)."""
    template = orjson.loads(read_event(base, inject.event))
    out: list[tuple[float, Record]] = []
    for n in range(inject.repeat):
        delay = n * inject.every
        doc = copy.deepcopy(template)
        for path, value in inject.overrides.items():
            set_path(doc, path, resolve(value, bindings, now + delay))
        for path, values in inject.vary.items():
            set_path(doc, path, resolve(values[n % len(values)], bindings, now + delay))
        for path in inject.unique:
            set_path(doc, path, f"{get_path(doc, path)}-{n}")
        raw = orjson.dumps(doc)
        headers = _signature(inject.signature, raw, signing_keys)
        record = Record(topics[inject.topic], raw, inject.key.encode() if inject.key else None, headers)
        out += [(delay, record)] * (2 if inject.duplicate else 1)
    if inject.reverse:
        offsets = [d for d, _ in out]
        out = list(zip(offsets, [r for _, r in reversed(out)], strict=True))
    return out


def _signature(how: Signature, value: bytes, keys: dict[str, str]) -> list[tuple[str, bytes]]:
    if how == Signature.UNSIGNED or not keys:
        return []
    key_id, secret = next(iter(sorted(keys.items())))
    if how == Signature.SIGNED:
        return signed_headers(key_id, secret.encode(), value)
    return [("responder-key-id", key_id.encode()), ("responder-signature", sign(b"forged", value).encode())]


def decision_record(d: Decision, pb: Playbook, incident: str, digest: str, now: float,
                    topic: str, request_id: str | None = None) -> Record:
    """The signed decision record for a parked step, answering its request `request_id` (None: a request from before
    requests had ids), tampered as the playbook says."""
    issued = datetime.fromtimestamp(now, UTC)
    ttl = timedelta(seconds=pb.settings.approval_decision_ttl)
    if d.tamper == Tamper.EXPIRED:
        issued -= ttl * 2
    decision = ApprovalDecision(incident=incident, step=d.step, decision=d.decision, by=d.by,
                                reason=f"tabletop {pb.id}", issued_at=issued, expires_at=issued + ttl,
                                digest="0" * 64 if d.tamper == Tamper.WRONG_DIGEST else digest, request_id=request_id)
    value = decision.canonical()
    secret = pb.settings.approval_keys[d.key].encode()
    headers = signed_headers(d.key, b"forged-secret" if d.tamper == Tamper.FORGED else secret, value)
    return Record(topic, value, incident.encode(), headers)
