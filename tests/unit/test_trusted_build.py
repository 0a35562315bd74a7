"""Models built without re-validation on the hot path equal what pydantic validation gives."""

from __future__ import annotations


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
