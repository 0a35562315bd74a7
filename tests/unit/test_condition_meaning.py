"""A condition means the same in `trigger.conditions` (read from the Event) and in a step's `when` (from its view)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from responder.models.event import Event, Resource, ResourceKind, Severity
from responder.models.runbook import Condition, Runbook
from responder.models.threat import Threat, ThreatCategory
from responder.normalise import normalise
from responder.rules.conditions import getter, holds
from responder.rules.matcher import Matcher
from tests.conftest import CORPUS

NAN, INF = float("nan"), float("inf")


def _event(**kw: Any) -> Event:
    fields: dict[str, Any] = {
        "id": "e1", "source": "guardduty", "type": "T", "severity": Severity.of(8, original=NAN),
        "time": datetime(2026, 1, 1, tzinfo=UTC), "incident_key": "k", "account": "111122223333",
        "attributes": {"ratio": NAN, "peak": INF, "ok": 0.5, "tags": ("a", "b"), "nested": {"x": [NAN, 1]},
                       "day": date(2026, 1, 1), "amount": Decimal("1.5"), "uid": UUID(int=1), "set": frozenset({"a"}),
                       "blob": b"x", "ips": ["10.0.0.1", "10.0.0.2"]},
        "resources": (Resource(kind=ResourceKind.BUCKET, id="b", attributes={"ratio": NAN}),),
        "threat": Threat(category=ThreatCategory.PUBLIC_DATA_EXPOSURE, techniques=("T1530",)), **kw}
    return Event(**fields)


def _both(cond: Condition, event: Event) -> tuple[bool, bool]:
    return holds(cond, {"event": event}), holds(cond, {"event": event.view()})


@pytest.mark.parametrize(("op", "value", "expected"), [
    ("eq", "2026-01-01T00:00:00Z", True),
    ("ne", "2026-01-01T00:00:00Z", False),
    ("in", ["2026-01-01T00:00:00Z"], True),
    ("glob", "*Z", True),
    ("regex", r"T00:00:00Z\Z", True),
    ("lt", "2026-01-01T00:00:00Z", False),
    ("le", "2026-01-01T00:00:00Z", True),
    ("ge", "2026-01-01T00:00:00Z", True),
    ("gt", "2025-12-31T23:59:59Z", True),
])
def test_a_time_condition_gives_the_same_answer_as_trigger_and_when(op: str, value: Any, expected: bool) -> None:
    """`event.time` reads as `…Z` text in a trigger as in `when`: eq/glob/lt on a `Z` time agree, and are right."""
    assert _both(Condition(field="event.time", op=op, value=value), _event()) == (expected, expected)


@pytest.mark.parametrize("field", ["event.attributes.ratio", "event.attributes.peak",
                                   "event.resources.0.attributes.ratio", "event.resource.bucket.attributes.ratio",
                                   "event.severity.original"])
def test_a_nan_or_infinite_value_reads_as_null_as_trigger_and_when(field: str) -> None:
    """A NaN or infinite value does not `exist` (reads as null), the same in a trigger and in `when`."""
    event = _event()
    assert _both(Condition(field=field, op="exists", value=True), event) == (False, False)
    assert _both(Condition(field=field, op="eq", value=None), event) == (True, True)


def test_a_tuple_reads_as_the_list_the_view_holds() -> None:
    """A tuple field (threat techniques) equals a YAML list in a trigger as in `when`."""
    cond = Condition(field="event.threat.techniques", op="eq", value=["T1530"])
    assert _both(cond, _event()) == (True, True)


def _paths(value: Any, where: str) -> Iterator[str]:
    yield where
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _paths(item, f"{where}.{i}")


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and (a == b or (a != a and b != b))


def _events() -> Iterator[Event]:
    yield _event()
    yield _event(time=datetime(2026, 1, 1, 12, 30, 15, 250000, tzinfo=timezone(timedelta(hours=5, minutes=30))))
    for path in sorted(CORPUS.glob("*/*.json")):
        yield from normalise(path.read_bytes())


def test_every_path_reads_the_same_from_the_event_and_its_view() -> None:
    """Over the corpus and odd events, each path of the view reads the same value from the Event model."""
    checked = 0
    for event in _events():
        view = event.view()
        for path in _paths(view, "event"):
            get = getter(path)
            assert _same(get({"event": event}), get({"event": view})), (event.id, path)
            checked += 1
    assert checked > 20


def _runbook(condition: dict[str, Any]) -> Runbook:
    return Runbook.model_validate({"id": "t", "trigger": {"source": "guardduty", "conditions": [condition]},
                                   "steps": [{"id": "s", "actuator": "a", "with": {}}]})


@pytest.mark.parametrize("condition", [
    {"field": "event.time", "op": "eq", "value": "2026-01-01T00:00:00Z"},
    {"field": "event.time", "op": "in", "value": ["2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z"]},
    {"field": "event.time", "op": "glob", "value": "2026-01-01T*Z"},
])
def test_the_matcher_and_its_index_match_a_z_time_trigger(condition: dict[str, Any]) -> None:
    """A trigger on `event.time` written as `…Z` matches through the Matcher, its eq/in anchor probed in the index."""
    matcher = Matcher([_runbook(condition)])
    assert matcher.index.stats()["eq"] == (condition["op"] != "glob")
    assert [m.runbook.id for m in matcher.match(_event())] == ["t"]
    assert matcher.match(_event(time=datetime(2026, 1, 2, tzinfo=UTC))) == []


@pytest.mark.parametrize(("field", "value"), [
    ("event.attributes.day", "2026-01-01"), ("event.attributes.amount", "1.5"),
    ("event.attributes.uid", "00000000-0000-0000-0000-000000000001"), ("event.attributes.set", ["a"]),
    ("event.attributes.blob", "x")])
def test_a_date_decimal_uuid_set_or_bytes_attribute_reads_as_the_view_writes_it(field: str, value: Any) -> None:
    """A date, Decimal, UUID, set or bytes attribute equals its JSON text (or list) in a trigger as in `when`."""
    assert _both(Condition(field=field, op="eq", value=value), _event()) == (True, True)


def test_a_list_of_plain_values_is_read_without_a_copy() -> None:
    """A list holding only plain JSON values is read as it is (a 200-item `contains` copied it on every check)."""
    event = _event()
    assert getter("event.attributes.ips")({"event": event}) is event.attributes["ips"]
    assert getter("event.threat.techniques")({"event": event}) == ["T1530"]
    assert getter("event.attributes.nested.x")({"event": event}) == [None, 1]


@pytest.mark.parametrize(("op", "value", "expected"), [
    ("eq", "2026-01-01T00:00:00+00:00", True),
    ("eq", "2026-01-01T05:30:00+05:30", True),
    ("eq", "2026-01-01T00:00:00.000+00:00", True),
    ("in", ["2025-01-01T00:00:00+00:00", "2026-01-01T00:00:00+00:00"], True),
    ("ne", "2026-01-01T00:00:00+00:00", False),
    ("not_in", ["2026-01-01T00:00:00+00:00"], False),
    ("ge", "2026-01-01T00:00:00+00:00", True),
    ("gt", "2026-01-01T00:00:00+00:00", False),
    ("lt", "2026-01-01T00:00:00.500000+00:00", True),
])
def test_a_time_written_with_a_numeric_offset_matches_as_before(op: str, value: Any, expected: bool) -> None:
    """A main-era `+00:00` (or other offset) time literal still matches, the runbook (so its digest) unchanged."""
    rb = _runbook({"field": "event.time", "op": op, "value": value})
    assert [m.runbook.id for m in Matcher([rb]).match(_event())] == (["t"] if expected else [])
    assert _both(Condition(field="event.time", op=op, value=value), _event()) == (expected, expected)
    assert rb.trigger.conditions[0].model_dump()["value"] == value


_HALF = datetime(2026, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)
_ZERO = datetime(2026, 1, 1, tzinfo=UTC)
_INDIA = datetime(2026, 1, 1, 5, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))  # 00:00Z


@pytest.mark.parametrize(("op", "value", "at", "expected"), [
    ("ge", "2026-01-01T00:00:00Z", _HALF, True),
    ("lt", "2026-01-01T00:00:00Z", _HALF, False),
    ("lt", "2026-01-01T00:00:00.500000Z", _ZERO, True),
    ("gt", "2026-01-01T00:00:00.500000Z", _ZERO, False),
    ("gt", "2026-01-01T00:00:00Z", _INDIA, False),
    ("ge", "2026-01-01T00:00:00Z", _INDIA, True),
    ("ge", "2026-01", _HALF, True),
    ("lt", "2026-01-01T00:00:00.5", _HALF, False),
    ("lt", "2026-01", _HALF, False),
])
def test_time_ordering_is_right_within_one_second(op: str, value: str, at: datetime, expected: bool) -> None:
    """`…00.500000Z` is after `…00Z` (text sorted it before); a prefix such as `2026-01` still orders as text."""
    event = _event(time=at)
    assert _both(Condition(field="event.time", op=op, value=value), event) == (expected, expected)
    matched = Matcher([_runbook({"field": "event.time", "op": op, "value": value})]).match(event)
    assert bool(matched) is expected
