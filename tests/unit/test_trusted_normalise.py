"""The decoders' direct build of Event/Resource (normalise.trusted) equals full pydantic validation, or raises alike."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from responder.errors import EventRejected
from responder.models.event import Event, Resource, ResourceKind
from responder.normalise import normalise
from responder.normalise.fields import scored
from responder.normalise.trusted import event, resource, validating
from tests.conftest import CORPUS
from tests.findings import envelope_bytes, guardduty_finding, set_path

RECEIVED = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)  # records without a time of their own take this one
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "events"


def _same(fast: Event, slow: Event) -> None:
    assert fast == slow
    assert fast.model_dump() == slow.model_dump()
    assert fast.view() == slow.view()
    assert fast.model_fields_set == slow.model_fields_set
    assert [(type(r), r.model_fields_set, r) for r in fast.resources] == \
        [(type(r), r.model_fields_set, r) for r in slow.resources]
    assert type(fast.time) is type(slow.time)
    assert fast.time.utcoffset() == slow.time.utcoffset()


def _both(data: bytes) -> tuple[list[Event] | type[Exception], list[Event] | type[Exception]]:
    out: list[list[Event] | type[Exception]] = []
    for slow in (False, True):
        try:
            if slow:
                with validating():
                    out.append(normalise(data, received=RECEIVED))
            else:
                out.append(normalise(data, received=RECEIVED))
        except EventRejected as exc:
            out.append(type(exc))
    return out[0], out[1]


def _check(data: bytes) -> None:
    fast, slow = _both(data)
    if isinstance(fast, list) and isinstance(slow, list):
        assert len(fast) == len(slow)
        for f, s in zip(fast, slow, strict=True):
            _same(f, s)
    else:
        assert fast == slow


SAMPLES = sorted([*CORPUS.glob("*/*.json"), *FIXTURES.glob("**/*.json")]) if CORPUS.is_dir() else \
    sorted(FIXTURES.glob("**/*.json"))


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_corpus_decodes_identically_with_and_without_validation(path: Path) -> None:
    """Every corpus and fixture record gives the same events (or the same rejection) on both build paths."""
    _check(path.read_bytes())


def test_the_fast_path_is_taken_for_a_guardduty_finding() -> None:
    """A well-formed GuardDuty finding is built without pydantic validation (the path the benchmarks measure)."""
    calls = {"n": 0}
    original = Resource.__init__

    def counting(self: Any, **kw: Any) -> None:
        calls["n"] += 1
        original(self, **kw)

    Resource.__init__ = counting  # type: ignore[method-assign,assignment]
    try:
        normalise(envelope_bytes(guardduty_finding("AKIAEXAMPLE000000001")))
    finally:
        Resource.__init__ = original  # type: ignore[method-assign]
    assert calls["n"] == 0


@pytest.mark.parametrize("kwargs", [
    {"kind": ResourceKind.IP, "id": ""},
    {"kind": ResourceKind.IP, "id": "x" * 2049},
    {"kind": "not-a-kind", "id": "x"},
    {"kind": ResourceKind.IP, "id": 7},
    {"kind": ResourceKind.IP, "id": "x", "name": 3},
    {"kind": ResourceKind.IP, "id": "x", "attributes": {1: "a"}},
])
def test_a_value_the_model_refuses_still_raises_its_validation_error(kwargs: dict[str, Any]) -> None:
    """resource() falls back to the model's constructor, which refuses what it always refused."""
    with pytest.raises(ValidationError):
        resource(**kwargs)
    with pytest.raises(ValidationError):
        Resource(**kwargs)


def test_an_event_the_model_refuses_still_raises() -> None:
    """event() with an empty id, a naive time or a non-str account raises pydantic's error, as Event(...) does."""
    good = normalise(envelope_bytes(guardduty_finding("AKIAEXAMPLE000000001")))[0]
    values = {k: getattr(good, k) for k in Event.model_fields}
    for field, bad in (("id", ""), ("time", good.time.replace(tzinfo=None)), ("account", 12), ("resources", [1])):
        with pytest.raises(ValidationError):
            event({**values, field: bad})


_TEXT = st.one_of(st.none(), st.text(max_size=8), st.sampled_from(["", " ", "  x ", "x" * 2100]), st.integers(),
                  st.booleans(), st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3),
                                                                                      st.integers(), max_size=2))
_PATHS = [
    ("id",), ("type",), ("severity",), ("updatedAt",), ("accountId",), ("region",), ("title",),
    ("resource", "accessKeyDetails", "accessKeyId"), ("resource", "accessKeyDetails", "userName"),
    ("resource", "accessKeyDetails", "userType"), ("resource", "accessKeyDetails", "principalId"),
    ("resource", "instanceDetails"), ("resource", "instanceDetails", "instanceId"),
    ("resource", "s3BucketDetails"), ("service", "action", "awsApiCallAction", "remoteIpDetails", "ipAddressV4"),
    ("service", "count"), ("service", "archived"),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(_PATHS), _TEXT | st.floats(allow_nan=True)), max_size=4))
def test_mutated_guardduty_findings_decode_identically(mutations: list[tuple[tuple[str, ...], Any]]) -> None:
    """Findings with odd values (empty, huge, wrong types) give equal events or the same rejection on both paths."""
    finding = copy.deepcopy(guardduty_finding("AKIAEXAMPLE000000001"))
    finding["resource"]["instanceDetails"] = {"instanceId": "i-0123456789abcdef0", "instanceType": "m5.large"}
    for path, value in mutations:
        set_path(finding, path, value)
    try:
        data = envelope_bytes(finding)
    except orjson.JSONEncodeError:
        return  # NaN and such cannot be sent at all
    _check(data)


def _octets_rule(value: str) -> bool:
    """The dotted-quad rule valid_ip applied before its regex: four ASCII-digit octets, no leading zero, <= 255."""
    octets = value.split(".")
    return value.isascii() and len(octets) == 4 and all(
        o.isdigit() and (o == "0" or o[0] != "0") and int(o) <= 255 for o in octets)


_QUADS = st.lists(st.one_of(st.integers(0, 300).map(str), st.sampled_from(["00", "01", "٣", "", " 1", "1\n", "-1"])),
                  min_size=3, max_size=5).map(".".join)


@settings(max_examples=500, deadline=None)
@given(st.one_of(_QUADS, st.text(alphabet="0123456789.٣ \n", max_size=20)))
def test_ipv4_check_follows_the_octet_rule(value: str) -> None:
    """valid_ip accepts a colon-free string exactly when the octet rule does (same address back, else None)."""
    from responder.normalise.fields import valid_ip

    assert valid_ip(value) == (value if _octets_rule(value) else None)


def test_a_memoised_severity_keeps_the_type_of_its_original_value() -> None:
    """`scored` remembers 1, 1.0 and True apart, so `severity.original` is the sender's value, not a cached twin."""
    originals = [scored(1.0, value).original for value in (1, 1.0, True)]
    assert [type(o) for o in originals] == [int, float, bool]
