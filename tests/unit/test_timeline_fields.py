"""Every field of an entry is bound by its hash: no edit of a field's value or type verifies."""

from __future__ import annotations

import orjson
import pytest

from responder.errors import ChainBroken
from responder.timeline import MemoryStore, Recorder
from responder.timeline.chain import canonical_json
from responder.timeline.verify import verify_lines


def _lines() -> list[bytes]:
    rec = Recorder(MemoryStore(), writer="w")
    rec.append("event.received", {"event_id": "e"})
    rec.append("step.intent", {"key": "k"}, "inc-1")
    rec.flush_sync()
    return rec.store.read().splitlines()


@pytest.mark.parametrize("forged", [False, 0, [], {}])
def test_an_entry_without_incident_cannot_be_given_a_non_string_one(forged):
    """`incident: null` rewritten as false, 0, [] or {} (hashed as no incident, never written) fails verify."""
    lines = _lines()
    doc = orjson.loads(lines[0])
    doc["incident"] = forged
    lines[0] = canonical_json(doc)
    with pytest.raises(ChainBroken) as info:
        verify_lines(lines, strict=True)
    assert info.value.seq == 0


def test_an_empty_incident_is_recorded_as_none():
    """The recorder writes an empty incident id as null (before, as "", which verify accepts as no incident)."""
    rec = Recorder(MemoryStore(), writer="w")
    rec.append("x", {}, "")
    rec.flush_sync()
    assert orjson.loads(rec.store.read())["incident"] is None
    verify_lines(rec.store.read().splitlines(), strict=True)
