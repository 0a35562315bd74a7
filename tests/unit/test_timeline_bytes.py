"""The recorder's exact bytes: lines and hashes pinned, so a faster seal cannot change what is written."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from responder.models.timeline import EntryKind, TimelineEntry
from responder.timeline import MemoryStore, Recorder
from responder.timeline.chain import canonical_json
from responder.timeline.checkpoint import Signer
from responder.tracing import stamped

INCIDENT = "98af7d1ace27ad449ff9"
# (clock, kind, body, incident): the acting path's five kinds, a second boundary rounded up, before 1970's second 1
APPENDS: list[tuple[float, str, dict[str, Any], str | None]] = [
    (1796201678.9999996, EntryKind.EVENT_RECEIVED,
     {"event_id": "R0-0", "origin": {"offset": 0, "partition": 0, "topic": "acting"}, "severity": 8.0,
      "resources": [{"kind": "ip", "id": "198.51.100.23"}]}, None),
    (1796201679.5, EntryKind.EVENT_MATCHED, {"event_id": "R0-0", "runbook": "bench@1"}, None),
    (5.5e-7, EntryKind.INCIDENT_OPENED, {"event_id": "R0-0", "group_key": "k", "runbook": "bench@1"}, INCIDENT),
    (1796201678.400816, "step.intent", {"actuator": "bench.record_dispatch", "clock": 1796201678.401696,
                                        "destructive": False, "params": {"access_key_id": "AKIA"}}, INCIDENT),
    (1796201679.0000004, EntryKind.STEP_RESULT, {"status": "ok", "note": "ü\n\"x\u2028", "n": None}, INCIDENT),
    (1796201680.25, "x", {}, "inc-\u00e9"),
]
FIRST = (b'{"at":"2026-12-02T08:54:39.000000+00:00","body":{"event_id":"R0-0","event_trace_id":"trace-0","origin":'
         b'{"offset":0,"partition":0,"topic":"acting"},"resources":[{"id":"198.51.100.23","kind":"ip"}],"severity":'
         b'8.0,"trace_id":"trace-1"},"hash":"7dec5d023745e30a7ae61f7be3a9ea4dc7442a946e01e12db7b96a4907f05894",'
         b'"incident":null,"kind":"event.received","prev":"0000000000000000000000000000000000000000000000000000000000'
         b'000000","seq":0,"writer":"vm:19175"}\n')
THIRD = (b'{"at":"1970-01-01T00:00:00.000001+00:00","body":{"event_id":"R0-0","group_key":"k","runbook":"bench@1"},'
         b'"hash":"6f393c6fba548fc5fcc6426f2f17405e41b0162bb626fb0d7944771ec989694c","incident":"98af7d1ace27ad449ff9",'
         b'"kind":"incident.opened","prev":"82fa5c41cace8ae879b8b0f053238f9ee4f68b61734793358ca6bd09e1addadb",'
         b'"seq":2,"writer":"vm:19175"}\n')
HEADS = ["7dec5d023745e30a7ae61f7be3a9ea4dc7442a946e01e12db7b96a4907f05894",
         "82fa5c41cace8ae879b8b0f053238f9ee4f68b61734793358ca6bd09e1addadb",
         "6f393c6fba548fc5fcc6426f2f17405e41b0162bb626fb0d7944771ec989694c",
         "4a80ae407999e1e68c787a54d0eb532e4225e9536f57c49326b38ea6efb431a5",
         "c398458860d97cbd71a32f3c11fb6c327d28df70f664cb2659f1705251746027",
         "09e9dde540cc7e630992d86fb295ce2a2802407380ca39ddda884e535ad855ab",
         "823b82fcfd807fef1d46a255668cb295cfff103157ac7140363eb8629340e057"]  # the last: the closing checkpoint
FILE_SHA256 = "3623451b674ce238faab65a620476470ef7fcbf6e9c05592a7c730ba9b24d1bb"
# since 2026-12-07 the checkpoint is version 2, signing the cadence (`every`, `interval_ms`): its line and the file's
# hash changed (6cabbf3e…, 73c07422… before); the six entries' bytes and hashes did not


def _record() -> tuple[Recorder, list[TimelineEntry]]:
    now = [1796201678.0]
    signer = Signer.from_text(base64.b64encode(bytes(range(32))).decode())  # Ed25519 signs deterministically
    rec = Recorder(MemoryStore(), writer="vm:19175", signer=signer, checkpoint_every=7, checkpoint_interval=1e12,
                   clock=lambda: now[0])
    entries = []
    for n, (at, kind, body, incident) in enumerate(APPENDS):
        now[0] = at
        if n == 0:
            with stamped("trace-1", "trace-0"):
                entries.append(rec.append(kind, body, incident))
        else:
            entries.append(rec.append(kind, body, incident))
    now[0] = 1796201681.125
    rec.close()
    return rec, entries


def test_recorded_lines_and_hashes_are_pinned() -> None:
    """Six entries and the closing checkpoint are these exact bytes, with these hashes chained in this order."""
    rec, _ = _record()
    data = rec.store.read()
    lines = data.splitlines(keepends=True)
    assert lines[0] == FIRST
    assert lines[2] == THIRD
    assert [e.hash for e in rec.entries()] == HEADS
    assert hashlib.sha256(data).hexdigest() == FILE_SHA256
    assert rec.head == HEADS[-1]
    assert rec.verify().entries == 7


def test_returned_entries_are_the_written_lines() -> None:
    """What `append` returns is, field for field, the entry its line encodes (a plain str kind, the body kept)."""
    rec, entries = _record()
    lines = rec.store.read().splitlines(keepends=True)
    for entry, line in zip(entries, lines, strict=False):
        assert canonical_json(entry.model_dump(mode="json")) + b"\n" == line
        assert type(entry.kind) is str
    assert entries[0].body["trace_id"] == "trace-1"
