"""The GuardDuty fast lane (normalise.guardduty_fast) builds exactly the general decoder's Event, or steps aside."""

from __future__ import annotations

import copy
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from responder.errors import ValidationFailed
from responder.models.event import Event, Resource, ResourceKind
from responder.normalise import guardduty, guardduty_fast, normalise, parse
from responder.normalise.assemble import make_event
from responder.normalise.fields import parse_time, scored
from responder.normalise.threats import _MEMO_KEY, _MEMO_SIZE, GUARDDUTY, ThreatTable, t
from responder.normalise.trusted import validating
from tests.conftest import CORPUS
from tests.findings import envelope_bytes, guardduty_finding, set_path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "events"
SAMPLES = sorted([*(CORPUS.glob("*/*.json") if CORPUS.is_dir() else []), *FIXTURES.glob("**/*.json")])


def _general(f: dict[str, Any], env: dict[str, Any] | None) -> Event | type[Exception]:
    try:
        return guardduty.finding_to_event(f, env)
    except Exception as exc:  # noqa: BLE001 - the test compares which error, if any
        return type(exc)


def _same(fast: Event, slow: Event) -> None:
    assert fast == slow
    assert fast.model_dump() == slow.model_dump()
    assert list(fast.attributes) == list(slow.attributes)  # same keys in the same order
    assert fast.view() == slow.view()
    assert fast.model_fields_set == slow.model_fields_set
    assert [(type(r), r.model_fields_set, type(r.kind), list(r.attributes)) for r in fast.resources] == \
        [(type(r), r.model_fields_set, type(r.kind), list(r.attributes)) for r in slow.resources]
    assert type(fast.time) is type(slow.time)
    assert fast.time.tzinfo is slow.time.tzinfo


def _check(f: dict[str, Any], env: dict[str, Any] | None) -> bool:
    """Fast lane vs general decoder on one finding; whether the lane took it."""
    fast = guardduty_fast.event(f, env)
    if fast is None:
        return False
    slow = _general(f, env)
    assert isinstance(slow, Event), f"the fast lane built an event the general decoder rejects ({slow})"
    _same(fast, slow)
    return True


def _findings(doc: Any) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    if isinstance(doc, dict) and isinstance(doc.get("detail"), dict) and "type" in doc["detail"]:
        return [(doc["detail"], doc)]
    if isinstance(doc, dict) and "type" in doc and "severity" in doc:
        return [(doc, None)]
    return []


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_corpus_findings_build_the_general_decoders_event(path: Path) -> None:
    """Every corpus or fixture finding the lane takes gives the general decoder's Event, field for field."""
    try:
        doc = parse(path.read_bytes())
    except Exception:  # noqa: BLE001 - not JSON: not the lane's concern
        return
    for f, env in _findings(doc):
        _check(f, env)


def test_the_lane_takes_the_common_shapes_and_steps_aside_when_validating() -> None:
    """Key-only, key + instance + several IPs, and raw findings take the lane; `validating()` turns it off."""
    plain = guardduty_finding("AKIAEXAMPLE000000001")
    wide = copy.deepcopy(plain)
    wide["resource"]["instanceDetails"] = {"instanceId": "i-0123456789abcdef0", "instanceType": "m5.large"}
    wide["service"]["action"]["networkConnectionAction"] = {"remoteIpDetails": {"ipAddressV4": "203.0.113.9"}}
    wide["service"]["action"]["portProbeAction"] = {"portProbeDetails": [
        {"remoteIpDetails": {"ipAddressV4": "198.51.100.23"}}, {"remoteIpDetails": {"ipAddressV4": "075.1.1.1"}}]}
    for f in (plain, wide):
        env = orjson.loads(envelope_bytes(f))
        assert _check(env["detail"], env)
        assert _check(f, None)
    event = guardduty_fast.event(wide, None)
    assert event is not None
    assert [r.kind for r in event.resources] == [ResourceKind.ACCESS_KEY, ResourceKind.IAM_USER,
                                                 ResourceKind.INSTANCE, ResourceKind.IP, ResourceKind.IP]
    assert event.attributes["invalid_ips"] == ["075.1.1.1"]
    with validating():
        assert guardduty_fast.event(plain, None) is None


def test_normalise_takes_the_lane_for_an_eventbridge_finding() -> None:
    """`normalise` of a well-formed envelope builds no Resource through pydantic (the benchmarked path)."""
    calls = {"n": 0}
    original = guardduty.finding_to_event

    def counting(*args: Any) -> Event:
        calls["n"] += 1
        return original(*args)

    guardduty.finding_to_event = counting  # type: ignore[assignment]
    try:
        normalise(envelope_bytes(guardduty_finding("AKIAEXAMPLE000000001")))
    finally:
        guardduty.finding_to_event = original  # type: ignore[assignment]
    assert calls["n"] == 0


_VALUES = st.one_of(
    st.none(), st.text(max_size=6), st.integers(-2, 12), st.floats(-1, 11, allow_nan=False), st.booleans(),
    st.sampled_from(["", " ", " x ", "x" * 2100, "AssumedRole", "ASIAXYZ", "AKIA1234", "1.2.3.4", "075.5.5.5",
                     "2001:db8::1", "2026-11-25T10:00:00Z", "2026-11-25T10:00:00+02:00", "2026-11-25Z", "1764064800",
                     "UnauthorizedAccess:IAMUser/X", "CryptoCurrency:EC2/BitcoinTool.B!DNS"]),
    st.lists(st.integers(-5, 5), max_size=2),
    st.dictionaries(st.sampled_from(["name", "arn", "x"]), st.text(max_size=3), max_size=2))
_PATHS = [
    ("id",), ("arn",), ("type",), ("severity",), ("updatedAt",), ("createdAt",), ("accountId",), ("region",),
    ("title",), ("resource",), ("resource", "resourceType"), ("resource", "accessKeyDetails"),
    ("resource", "accessKeyDetails", "accessKeyId"), ("resource", "accessKeyDetails", "userName"),
    ("resource", "accessKeyDetails", "userType"), ("resource", "accessKeyDetails", "principalId"),
    ("resource", "instanceDetails"), ("resource", "instanceDetails", "instanceId"),
    ("resource", "instanceDetails", "instanceType"), ("resource", "s3BucketDetails"),
    ("resource", "eksClusterDetails"), ("service",), ("service", "action"),
    ("service", "action", "awsApiCallAction"), ("service", "action", "awsApiCallAction", "api"),
    ("service", "action", "awsApiCallAction", "remoteIpDetails", "ipAddressV4"),
    ("service", "action", "networkConnectionAction", "remoteIpDetails", "ipAddressV4"),
    ("service", "action", "portProbeAction", "portProbeDetails"),
    ("service", "action", "dnsRequestAction", "domain"),
    ("service", "action", "actionType"), ("service", "additionalInfo"), ("service", "additionalInfo", "sample"),
    ("service", "count"), ("service", "archived"),
]
_ENVELOPE = [("account",), ("region",), ("time",), ("id",)]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(_PATHS), _VALUES), max_size=4),
       st.lists(st.tuples(st.sampled_from(_ENVELOPE), _VALUES), max_size=2), st.booleans())
def test_mutated_findings_build_the_general_decoders_event(
        mutations: list[tuple[tuple[str, ...], Any]], envelope: list[tuple[tuple[str, ...], Any]],
        instance: bool) -> None:
    """Mutated GuardDuty findings give the lane the general decoder's Event, or the lane steps aside."""
    finding = copy.deepcopy(guardduty_finding("AKIAEXAMPLE000000001"))
    if instance:
        finding["resource"]["instanceDetails"] = {"instanceId": "i-0123456789abcdef0", "instanceType": "m5.large"}
    for path, value in mutations:
        set_path(finding, path, value)
    env = orjson.loads(envelope_bytes(finding))
    for path, value in envelope:
        set_path(env, path, value)
    _check(env["detail"], env)
    _check(env["detail"], None)


@settings(max_examples=500, deadline=None)
@given(st.one_of(
    st.builds("{}-{:02d}-{:02d}{}{:02d}:{:02d}:{:02d}{}Z".format, st.integers(1, 9999), st.integers(0, 13),
              st.integers(0, 32), st.sampled_from(["T", " ", "t"]), st.integers(0, 25), st.integers(0, 60),
              st.integers(0, 60), st.sampled_from(["", ".1", ".123", ".123456", ".1234567", ",5"])),
    st.text(alphabet="0123456789-:T.Z+ WwzZ", max_size=30).map(lambda s: s + "Z")))
def test_the_z_time_shortcut_equals_the_general_parse(value: str) -> None:
    """`parse_time` of a `…Z` string gives what the general path gives (same instant and tzinfo), or both refuse."""
    def outcome(text: str) -> datetime | type[Exception]:
        try:
            return parse_time(text)
        except ValidationFailed as exc:
            return type(exc)

    fast, general = outcome(value), outcome(value + " ")  # a trailing blank skips the shortcut
    assert fast == general
    if isinstance(fast, datetime) and isinstance(general, datetime):
        assert fast.tzinfo is UTC
        assert general.tzinfo is UTC


def test_threat_rows_are_memoised_within_a_bound() -> None:
    """A table remembers at most `_MEMO_SIZE` keys and answers the same with or without its memory."""
    from responder.models.threat import ThreatCategory

    table = ThreatTable({"A:*": t(ThreatCategory.DISCOVERY), "A:B": t(ThreatCategory.CRYPTOMINING)})
    keys = [f"A:{i}" for i in range(_MEMO_SIZE + 50)] + ["A:B", "C", "A"]
    first = [table.lookup(k) for k in keys]
    assert [table.lookup(k) for k in keys] == first
    assert len(table._memo) == _MEMO_SIZE
    assert first[-3:] == [t(ThreatCategory.CRYPTOMINING).threat, None, None]
    assert GUARDDUTY.lookup("UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS") == \
        GUARDDUTY.lookup("UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS")


def test_a_long_threat_key_is_answered_but_not_remembered() -> None:
    """A key over `_MEMO_KEY` characters (a sender's type, up to the record size limit) is looked up, never kept."""
    from responder.models.threat import ThreatCategory

    table = ThreatTable({"A:*": t(ThreatCategory.DISCOVERY)})
    long_key = "A:" + "x" * _MEMO_KEY
    assert table.lookup(long_key) == t(ThreatCategory.DISCOVERY).threat
    assert table.lookup("A:short") == t(ThreatCategory.DISCOVERY).threat
    assert set(table._memo) == {"A:short"}


def test_make_event_drops_only_none_and_empty_attributes() -> None:
    """None, "", [] and {} are dropped from attributes; 0, 0.0, False and non-empty values are kept, in order."""
    event = make_event(source="s", type="t", severity=scored(1.0), time=datetime(2026, 1, 1, tzinfo=UTC), id="i",
                       resources=(Resource(kind=ResourceKind.IP, id="1.2.3.4"),),
                       attributes={"a": None, "b": "", "c": [], "d": {}, "e": 0, "f": 0.0, "g": False, "h": "x",
                                   "i": [0], "j": {"k": None}, "k": " "})
    assert list(event.attributes.items()) == [("e", 0), ("f", 0.0), ("g", False), ("h", "x"), ("i", [0]),
                                              ("j", {"k": None}), ("k", " ")]
    assert event.incident_key == "-:ip:1.2.3.4"


def test_lane_events_share_a_fields_set_that_model_copy_does_not_touch() -> None:
    """`model_copy(update=…)` of a lane Event copies its fields set: the next lane Event still names every field."""
    f = guardduty_finding("AKIAEXAMPLE000000001")
    first = guardduty_fast.event(f, None)
    assert first is not None
    copied = first.model_copy(update={"actor": "someone"})
    assert copied.actor == "someone"
    assert copied.model_fields_set is not first.model_fields_set
    second = guardduty_fast.event(f, None)
    assert second is not None
    assert second.model_fields_set == set(Event.model_fields) == first.model_fields_set
    assert all(r.model_fields_set == set(Resource.model_fields) for r in second.resources)


def test_builder_refuses_a_model_that_is_not_frozen() -> None:
    """A shared fields set is only sound for frozen models: `builder` or `tuple_builder` of a mutable one raises."""
    from pydantic import BaseModel

    from responder.models.event import builder, tuple_builder

    class Mutable(BaseModel):
        x: int = 0

    with pytest.raises(TypeError, match="not frozen"):
        builder(Mutable)
    with pytest.raises(TypeError, match="not frozen"):
        tuple_builder(Mutable)


def test_finding_types_are_remembered_within_the_threat_tables_bounds() -> None:
    """The lane remembers at most `_MEMO_SIZE` finding types, none over `_MEMO_KEY` characters, and answers alike."""
    f = guardduty_finding("AKIAEXAMPLE000000001")
    saved = dict(guardduty_fast._TYPES)
    try:
        guardduty_fast._TYPES.clear()
        for i in range(_MEMO_SIZE + 10):
            f["type"] = f" Recon:IAMUser/T{i} "
            assert _check(f, None)
        f["type"] = "Recon:IAMUser/" + "x" * _MEMO_KEY
        assert _check(f, None)
        assert len(guardduty_fast._TYPES) == _MEMO_SIZE
        assert all(len(k) <= _MEMO_KEY for k in guardduty_fast._TYPES)
        f["type"] = " Recon:IAMUser/T3 "
        assert _check(f, None)  # remembered: still the general decoder's event
    finally:
        guardduty_fast._TYPES.clear()
        guardduty_fast._TYPES.update(saved)


@settings(max_examples=1000, deadline=None)
@given(st.one_of(
    st.text(alphabet="0123456789.", max_size=20),
    st.builds("{}.{}.{}.{}".format, *[st.one_of(st.integers(0, 300), st.sampled_from(["00", "01", "007", ""]))] * 4),
    st.text(max_size=20)))
def test_the_quad_check_accepts_exactly_what_valid_ip_accepts_without_a_colon(value: str) -> None:
    """`fields.check_quad` accepts a colon-free string exactly when `valid_ip` does."""
    from responder.normalise.fields import _regex_quad, check_quad, valid_ip

    for check in (check_quad, _regex_quad):  # the one in use, and the fallback where inet_pton disagrees
        try:
            check(socket.AF_INET, value)
            accepted = True
        except (OSError, ValueError, TypeError):
            accepted = False
        assert accepted == (":" not in value and valid_ip(value) is not None)


def test_severities_keep_their_type() -> None:
    """8 and 8.0 keep their own `original` (the severity memo keys the type), and many severities decode alike."""
    f = guardduty_finding("AKIAEXAMPLE000000001")
    for severity in (8, 8.0, 8, 8.0):
        f["severity"] = severity
        event = guardduty_fast.event(f, None)
        assert event is not None
        assert type(event.severity.original) is type(severity)
        assert _check(f, None)
    for i in range(_MEMO_SIZE + 10):
        f["severity"] = i / (_MEMO_SIZE + 10) * 10
        assert _check(f, None)
