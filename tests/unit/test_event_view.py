"""The event view built from the fields equals the pydantic dump it replaces (corpus and generated events)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from enum import Enum
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from responder.engine.incidents import Incident
from responder.models.event import Event, Resource, ResourceKind, Severity
from responder.models.threat import Threat, ThreatCategory
from responder.models.view import iso_time, json_time
from responder.normalise import normalise
from tests.conftest import CORPUS


def oracle(event: Event) -> dict[str, Any]:
    """The view as it was built before: pydantic's JSON dump without raw, plus the first resource by kind."""
    data = event.model_dump(mode="json", exclude={"raw"})
    by_kind: dict[str, Any] = {}
    for res in data["resources"]:
        by_kind.setdefault(res["kind"], res)
    data["resource"] = by_kind
    return data


def same(a: Any, b: Any) -> bool:
    """Equal values of equal types, key order included (a view's text is what templates render)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and a != a:  # NaN: equal to itself here (the view keeps what the dump keeps)
        return b != b
    return bool(a == b)


def test_view_equals_the_dump_over_the_corpus() -> None:
    """Every event decoded from the shared corpus has a view equal to the model_dump-based one."""
    checked = 0
    for path in sorted(CORPUS.glob("*/*.json")):
        for event in normalise(path.read_bytes()):
            assert same(event.view(), oracle(event)), path
            checked += 1
    assert checked > 50 or not CORPUS.is_dir()


class Colour(Enum):
    """An enum value inside free-form attributes."""

    RED = "red"


_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.text(max_size=8),
                    st.floats(allow_nan=True, allow_infinity=True))
_ODD = st.one_of(st.just(Colour.RED), st.tuples(st.integers(), st.text(max_size=3)),
                 st.datetimes(timezones=st.just(UTC)), st.frozensets(st.integers(0, 3), max_size=2))
_JSON = st.recursive(_SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                      st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                     max_leaves=8)
_ANY = st.recursive(st.one_of(_SCALAR, _ODD), lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.one_of(st.text(max_size=4), st.integers(0, 9)), inner, max_size=3)),
    max_leaves=8)
_OFFSETS = st.one_of(st.just(UTC), st.builds(lambda s: timezone(timedelta(seconds=s)), st.integers(-86399, 86399)),
                     st.builds(lambda m: timezone(timedelta(minutes=m)), st.integers(-1439, 1439)))
_RESOURCE = st.builds(Resource, kind=st.sampled_from(ResourceKind), id=st.text(min_size=1, max_size=5),
                      name=st.none() | st.text(max_size=4), arn=st.none() | st.text(max_size=4),
                      attributes=st.dictionaries(st.text(max_size=4), _ANY, max_size=3))
_EVENT = st.builds(
    Event, id=st.text(min_size=1, max_size=4), source=st.text(min_size=1, max_size=4),
    type=st.text(min_size=1, max_size=4),
    severity=st.builds(Severity.of, st.floats(0, 10), _JSON),
    time=st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=_OFFSETS),
    account=st.none() | st.text(max_size=4), region=st.none() | st.text(max_size=4),
    cloud=st.none() | st.text(max_size=4), actor=st.none() | st.text(max_size=4),
    resources=st.lists(_RESOURCE, max_size=4).map(tuple), incident_key=st.text(min_size=1, max_size=4),
    attributes=st.dictionaries(st.text(max_size=4), _ANY, max_size=4),
    threat=st.none() | st.builds(
        Threat, category=st.sampled_from(ThreatCategory),
        techniques=st.lists(st.sampled_from(["T1078", "AML.T0018.000"]), max_size=2).map(tuple)),
    raw=st.none() | _JSON)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_EVENT)
def test_view_equals_the_dump_for_generated_events(event: Event) -> None:
    """Generated events (odd offsets, enums, tuples, NaN, non-str keys in attributes) view as pydantic dumps them."""
    assert same(event.view(), oracle(event))


@given(st.datetimes(timezones=_OFFSETS))
def test_json_time_is_pydantics_text(at: datetime) -> None:
    """A datetime's text is pydantic's: Z for UTC, whole-minute offsets as isoformat writes them, odd ones too."""
    assert json_time(at) == _dump_time(at)


def _dump_time(at: datetime) -> str:
    from pydantic import TypeAdapter

    return str(TypeAdapter(datetime).dump_python(at, mode="json"))


def _reference_recent(times: list[datetime], now: datetime, seconds: float) -> int:
    start = now - timedelta(seconds=seconds)
    return sum(1 for t in times if start < t <= now)


_T0 = datetime(2026, 1, 1, tzinfo=UTC)


@given(st.lists(st.integers(-100, 100), min_size=1, max_size=5), st.integers(-100, 100), st.floats(0, 150))
def test_recent_counts_as_the_generator_did(offsets: list[int], now: int, seconds: float) -> None:
    """Incident.recent (one-event fast path included) counts the events in (now - seconds, now] as before."""
    times = [_T0 + timedelta(seconds=o) for o in offsets]
    inc = Incident("i", "rb", "k", times[0], times[0], times=list(times))
    at = _T0 + timedelta(seconds=now)
    assert inc.recent(at, seconds) == _reference_recent(times, at, seconds)


def test_a_copy_with_a_new_time_has_its_own_view() -> None:
    """A copy made after the view was read (the engine clamps a future-dated time) shows the copy's time."""
    event = Event(id="e", source="s", type="t", severity=Severity.of(5), incident_key="k",
                  time=datetime(2030, 1, 1, tzinfo=UTC))
    assert event.view()["time"] == "2030-01-01T00:00:00Z"
    clamped = event.model_copy(update={"time": datetime(2026, 12, 2, tzinfo=UTC)})
    assert clamped.view()["time"] == "2026-12-02T00:00:00Z"
    assert event.view()["time"] == "2030-01-01T00:00:00Z"


def test_the_view_is_built_once_per_event_and_not_a_field() -> None:
    """`view()` gives the same dict at every read, and the kept view is no field of the event's dump or equality."""
    event = Event(id="e", source="s", type="t", severity=Severity.of(5), incident_key="k",
                  time=datetime(2030, 1, 1, tzinfo=UTC))
    twin = event.model_copy()
    assert event.view() is event.view()
    assert "_view" not in event.model_dump()
    assert event == twin


def test_iso_time_remembers_by_identity_not_by_equal_instants() -> None:
    """`iso_time` gives each datetime its own `isoformat`, even right after an equal instant in another offset."""
    utc = datetime(2026, 12, 5, 12, 0, 0, 123456, tzinfo=UTC)
    plus_one = utc.astimezone(timezone(timedelta(hours=1)))
    assert utc == plus_one
    for at in (utc, utc, plus_one, plus_one, utc, utc.replace(microsecond=0)):
        assert iso_time(at) == at.isoformat()


def test_iso_time_never_answers_for_a_datetime_it_no_longer_holds() -> None:
    """A datetime made after the one `iso_time` last wrote was dropped (its address free again) gets its own text."""
    minus_two = timezone(timedelta(hours=-2))  # made once: the new datetime is the only object made in between
    for second in range(60):
        iso_time(datetime(2026, 12, 5, 12, 0, second, tzinfo=UTC))  # dropped at once
        at = datetime(2026, 12, 5, 13, 30, second, 250000, tzinfo=minus_two)
        assert iso_time(at) == at.isoformat()
