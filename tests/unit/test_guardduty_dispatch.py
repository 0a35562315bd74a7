"""`normalise.decode_doc` hands an EventBridge GuardDuty finding to the fast lane without detection; the result (or
the error) is what detection and the detected format's decoder give."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from responder.models.event import Event
from responder.normalise import _decode_one, decode_doc, formats, normalise
from responder.normalise.fields import received_at
from tests.findings import envelope_bytes, guardduty_finding, set_path

_DELETE = object()  # a mutation that removes the key


def _outcome(fn: Any, *args: Any, **kwargs: Any) -> list[Event] | tuple[type[Exception], str]:
    try:
        return list(fn(*args, **kwargs))
    except Exception as exc:  # noqa: BLE001 - the test compares which error, if any
        return type(exc), str(exc)


def _detected(doc: Any, fmt: str | None, received: datetime | None) -> list[Event]:
    """What `decode_doc` gave before the shortcut: detection, then the format's decoder, element by element."""
    with received_at(received):
        return [e for item in (doc if isinstance(doc, list) else [doc]) for e in _decode_one(item, fmt)]


def test_guardduty_eventbridge_is_the_first_format() -> None:
    """The shortcut stands for detection only while the envelope's format is the first one `detect` tries."""
    assert next(iter(formats())) == "guardduty.eventbridge"


def test_an_envelope_of_the_common_shape_is_not_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    """`normalise` and `decode_doc` of a well-formed envelope call no detection; an odd one still is detected."""
    calls: list[Any] = []
    import responder.normalise as package

    original = package.detect
    monkeypatch.setattr(package, "detect", lambda doc, only=None: calls.append(doc) or original(doc, only))
    data = envelope_bytes(guardduty_finding("AKIAEXAMPLE000000001"))
    [event] = normalise(data)
    assert decode_doc(orjson.loads(data), received=datetime(2026, 1, 1, tzinfo=UTC)) == [event]
    assert calls == []
    odd = orjson.loads(data)
    odd["detail"]["severity"] = "8"  # the lane steps aside: detection and the general decoder decide
    assert decode_doc(odd)[0].severity.original == "8"
    assert len(calls) == 1


_ENVELOPE_MUTATIONS = st.tuples(
    st.sampled_from([("source",), ("detail",), ("detail-type",), ("detail", "type"), ("detail", "severity"),
                     ("detail", "resource"), ("detail", "service"), ("detail", "id"), ("detail", "updatedAt"),
                     ("detail", "resource", "accessKeyDetails"), ("detail", "service", "action")]),
    st.one_of(st.just(_DELETE), st.none(), st.integers(-1, 11), st.just([]), st.just({}), st.just("x"),
              st.sampled_from(["aws.guardduty", "aws.securityhub", "GuardDuty Finding", "8", "not a time"])))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_ENVELOPE_MUTATIONS, max_size=3), st.sampled_from([None, "guardduty", "guardduty.eventbridge",
                                                                   "securityhub"]),
       st.sampled_from([None, datetime(2026, 1, 1, tzinfo=UTC)]), st.booleans())
def test_decode_doc_gives_what_detection_gives(mutations: list[tuple[tuple[str, ...], Any]], fmt: str | None,
                                               received: datetime | None, as_array: bool) -> None:
    """`decode_doc` returns the same events or errors as detection and the decoder over mutated GuardDuty envelopes."""
    doc: Any = orjson.loads(envelope_bytes(guardduty_finding("AKIAEXAMPLE000000001")))
    for path, value in mutations:
        if value is _DELETE:
            parent = doc
            for part in path[:-1]:
                parent = parent.get(part) if isinstance(parent, dict) else None
            if isinstance(parent, dict):
                parent.pop(path[-1], None)
        else:
            set_path(doc, path, copy.deepcopy(value))
    if as_array:
        doc = [doc]
    assert _outcome(decode_doc, doc, fmt, received=received) == _outcome(_detected, doc, fmt, received)
