"""A condition means the same in `trigger.conditions` (read from the Event) and in a step's `when` (from its view)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

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
        "attributes": {"ratio": NAN, "peak": INF, "ok": 0.5, "tags": ("a", "b"), "nested": {"x": [NAN, 1]}},
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
