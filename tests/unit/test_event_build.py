"""The decoders' unvalidated fast constructors build exactly what pydantic validation would, or validate."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from responder.models.event import Event, Resource, ResourceKind, Severity, event, resource
from responder.normalise import normalise, parse_documents
from tests.conftest import CORPUS

FILES = sorted(CORPUS.rglob("*.json")) if CORPUS.is_dir() else []
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_fast_built_events_equal_validated_ones(path) -> None:  # type: ignore[no-untyped-def]
    """Every corpus event equals its re-validated copy: same fields, same dump, same fields-set."""
    for doc in parse_documents(path.read_bytes()):
        try:
            events = normalise(__import__("orjson").dumps(doc))
        except Exception:  # noqa: BLE001 - refused records are covered by the conformance tests
            continue
        for ev in events:
            again = Event.model_validate(ev.model_dump())
            assert again == ev
            assert again.model_dump(mode="json") == ev.model_dump(mode="json")
            assert ev.model_fields_set <= again.model_fields_set | {"attributes", "resources"}


def test_fast_resource_matches_validated_resource() -> None:
    """`resource()` equals `Resource(...)` for plain values."""
    fast = resource(ResourceKind.ACCESS_KEY, "AKIA1", attributes={"user_name": "bob"})
    assert fast == Resource(kind=ResourceKind.ACCESS_KEY, id="AKIA1", attributes={"user_name": "bob"})
    assert fast.attributes is not resource(ResourceKind.IP, "1.2.3.4").attributes


@pytest.mark.parametrize("bad", ["", "x" * 2049])
def test_fast_resource_still_refuses_bad_ids(bad: str) -> None:
    """An empty or over-long id is validated (and refused) as before."""
    with pytest.raises(ValidationError):
        resource(ResourceKind.INSTANCE, bad)


@pytest.mark.parametrize("change", [{"id": ""}, {"time": datetime(2026, 1, 1)}, {"resources": ["x"]},
                                    {"account": 12}, {"incident_key": ""}, {"bogus": 1}])
def test_fast_event_validates_anything_unusual(change: dict[str, object]) -> None:
    """A value the schema would refuse still raises ValidationError (naive time, empty id, wrong types, extras)."""
    values: dict[str, object] = {"id": "e1", "source": "s", "type": "t", "severity": Severity.of(5), "time": NOW,
                                 "incident_key": "k"}
    with pytest.raises(ValidationError):
        event(**(values | change))


def test_fast_event_gets_fresh_defaults() -> None:
    """Two fast-built events never share a default attributes dict."""
    a = event(id="e1", source="s", type="t", severity=Severity.of(5), time=NOW, incident_key="k")
    b = event(id="e2", source="s", type="t", severity=Severity.of(5), time=NOW, incident_key="k")
    assert a.attributes == {}
    assert a.attributes is not b.attributes
    assert a == Event(id="e1", source="s", type="t", severity=Severity.of(5), time=NOW, incident_key="k")


def test_consumer_records_become_the_same_raw_record_as_validation_gives() -> None:
    """`to_raw` (unvalidated) equals a validated RawRecord, None value and header values becoming b""."""
    from types import SimpleNamespace

    from responder.ingest.kafka import to_raw
    from responder.models.event import RawRecord

    msg = SimpleNamespace(topic="t", partition=2, offset=7, key=b"k", value=None, headers=[("h", None), ("g", b"1")],
                          timestamp=123)
    raw = to_raw(msg)
    assert raw == RawRecord(topic="t", partition=2, offset=7, key=b"k", value=b"", headers=(("h", b""), ("g", b"1")),
                            timestamp_ms=123)
    assert raw.header("g") == b"1"
