"""The no-match prefilter: a format's head rules out an event only when the full decode + match would match nothing."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from responder.actuators.registry import registry
from responder.catalog import load_runbooks
from responder.engine import Engine
from responder.models.event import Event, RawRecord
from responder.normalise import guardduty_heads, head, keyed, parse
from responder.pipeline import Pipeline
from responder.rules.index import MEMO
from responder.rules.matcher import Matcher
from responder.timeline import MemoryStore, Recorder
from tests.conftest import CORPUS
from tests.fakes import FakeIam
from tests.findings import envelope_bytes, guardduty_finding
from tests.source_kit import _fields, head_equals_full, notify_runbook, sound

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = load_runbooks(ROOT / "runbooks", registry)
FIXTURES = ROOT / "tests" / "fixtures" / "events"
SAMPLES = sorted([*(CORPUS.glob("*/*.json") if CORPUS.is_dir() else []), *FIXTURES.glob("**/*.json")])


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_head_fields_equal_the_full_events_and_never_hide_a_shipped_match(path: Path) -> None:
    """For every corpus/fixture record: head fields equal the decoded event's; shipped runbooks lose no match."""
    doc = parse(path.read_bytes())
    head_equals_full(doc)
    sound(Matcher(SHIPPED), doc)


def test_a_guardduty_finding_below_the_threshold_is_ruled_out_by_its_head() -> None:
    """The fast path is taken: a candidate runbook whose severity condition fails is decided on the head."""
    rb = notify_runbook({"source": "guardduty", "type": "*IAMUser/*",
                         "conditions": [{"field": "event.severity.score", "op": "ge", "value": 5}]})
    low = orjson.loads(envelope_bytes(guardduty_finding("AKIAEXAMPLE000000001", severity=2)))
    high = orjson.loads(envelope_bytes(guardduty_finding("AKIAEXAMPLE000000001", severity=8)))
    assert sound(Matcher([rb]), low)
    assert not sound(Matcher([rb]), high)


def test_a_runbook_reading_beyond_the_head_forces_the_full_decode() -> None:
    """A candidate whose conditions read resources (or an eq anchor on them) is never decided on the head."""
    doc = orjson.loads(envelope_bytes(guardduty_finding("AKIAEXAMPLE000000001", severity=2)))
    reads_resource = notify_runbook({"source": "guardduty", "conditions": [
        {"field": "event.resource.access_key.id", "op": "eq", "value": "AKIAOTHER"}]})
    assert head(doc) is not None
    assert not Matcher([reads_resource]).rejects(*head(doc))  # type: ignore[misc]


def test_the_pipeline_counts_a_ruled_out_event_as_unmatched() -> None:
    """prepare() on a ruled-out record finds nothing and counts one event, as the full path does."""
    rb = notify_runbook({"source": "guardduty",
                         "conditions": [{"field": "event.severity.score", "op": "ge", "value": 5}]})
    p = Pipeline([rb], Engine(Recorder(MemoryStore()), registry, FakeIam()))
    prepared = p.prepare(RawRecord(topic="t", value=envelope_bytes(guardduty_finding("AKIAEX0000000001", severity=2))))
    assert prepared.found == []
    assert (p.counters.records, p.counters.events, p.counters.matched) == (1, 1, 0)
    p.publish_counts()
    assert p.metrics.value("responder_event_outcomes_total", source="guardduty", outcome="unmatched") == 1


_TYPES = ["UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS", "Recon:IAMUser/MaliciousIPCaller",
          "Policy:S3/BucketBlockPublicAccessDisabled", " Backdoor:EC2/C&CActivity.B ", "", "weird"]
_FIELDS = ["event.severity.score", "event.severity.label", "event.type", "event.source", "event.threat.category",
           "event.time", "event.account", "event.resource.access_key.id", "event.attributes.sample", "incident.id"]
_OPS = {"ge": st.floats(0, 10), "lt": st.floats(0, 10), "eq": st.sampled_from([2, 8.0, "high", "low", "guardduty"]),
        "in": st.lists(st.sampled_from(["high", "low", "medium", 5.0, "guardduty"]), max_size=3),
        "exists": st.booleans(), "glob": st.sampled_from(["*IAMUser*", "Recon:*", "*"])}
_CONDITION = st.sampled_from(sorted(_OPS)).flatmap(
    lambda op: st.builds(lambda f, v: {"field": f, "op": op, "value": v}, st.sampled_from(_FIELDS), _OPS[op]))
_NODE = st.recursive(_CONDITION, lambda inner: st.one_of(
    st.builds(lambda xs: {"all": xs}, st.lists(inner, min_size=1, max_size=2)),
    st.builds(lambda xs: {"any": xs}, st.lists(inner, min_size=1, max_size=2)),
    st.builds(lambda x: {"not": x}, inner)), max_leaves=3)
_TRIGGER = st.fixed_dictionaries({
    "source": st.sampled_from(["guardduty", "*", "guard*", "cloudtrail"]),
    "type": st.sampled_from(["*", "*IAMUser/*", "Recon:*", "UnauthorizedAccess:IAMUser/*", _TYPES[0], "weird"]),
    "conditions": st.lists(_NODE, max_size=2),
}, optional={"category": st.sampled_from([["credential_exfiltration"], ["discovery", "cryptomining"]])})
_MUTATION = st.tuples(st.sampled_from(["severity", "type", "updatedAt", "service", "resource"]),
                      st.one_of(st.floats(0, 10), st.integers(-3, 12), st.sampled_from(_TYPES), st.none(),
                                st.sampled_from(["8", "high", "2026-11-25T10:00:00Z", "nonsense", 1.7e9, True, False,
                                                 -0.0, 2**64 - 1, "Recon:IAMUser/" + "x" * 300]),
                                st.just([1]), st.just({})))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_TRIGGER, min_size=1, max_size=4), st.lists(_MUTATION, max_size=3),
       st.sampled_from(["envelope", "raw", "detail"]), st.booleans())
def test_the_head_never_rules_out_an_event_a_generated_runbook_matches(
        triggers: list[dict[str, Any]], mutations: list[tuple[str, Any]], shape: str, with_shipped: bool) -> None:
    """Over generated runbooks (plus the shipped ones) and mutated findings: ruled out ⇒ the full match is empty."""
    finding = copy.deepcopy(guardduty_finding("AKIAEXAMPLE000000001"))
    for key, value in mutations:
        finding[key] = value
    envelope = orjson.loads(envelope_bytes(finding))
    doc = {"envelope": envelope, "raw": finding, "detail": {"detail": finding}}[shape]
    books = [notify_runbook(t, f"gen-{i}") for i, t in enumerate(triggers)] + (SHIPPED if with_shipped else [])
    head_equals_full(doc)
    sound(Matcher(books), doc)


def test_the_keyed_head_skips_the_time_and_its_verdict_is_remembered_per_key() -> None:
    """A finding ruled out by type and severity alone is ruled out even with an unreadable time; one build per key."""
    rb = notify_runbook({"source": "guardduty", "type": "*IAMUser/*",
                         "conditions": [{"field": "event.severity.score", "op": "ge", "value": 5}]})
    matcher = Matcher([rb])
    docs = [orjson.loads(envelope_bytes(guardduty_finding(f"AKIAEXAMPLE00000000{i}", severity=2, updated=when)))
            for i, when in enumerate(["2026-11-25T10:00:00.000Z", "not a time", "2026-11-26T10:00:00.000Z"])]
    for doc in docs[1:]:
        doc["time"] = "not a time"
    assert head(docs[1]) is None  # the whole head cannot read it
    built: list[Any] = []

    def counting(key: Any) -> Event:
        built.append(key)
        return guardduty_heads.finding_partial(key)

    for doc in docs:
        found = keyed(doc)
        assert found is not None
        assert found[0] is guardduty_heads.finding_partial
        assert isinstance(matcher.verdict(counting, found[1], found[2]), Event)
        assert sound(matcher, doc)
    assert len(built) == 1


def test_a_runbook_reading_the_time_is_decided_by_the_whole_head() -> None:
    """The keyed head holds no time: a candidate reading `event.time` leaves the verdict to the head that has it."""
    rb = notify_runbook({"source": "guardduty", "conditions": [{"field": "event.time", "op": "lt", "value": "2000"}]})
    doc = orjson.loads(envelope_bytes(guardduty_finding("AKIAEXAMPLE000000001", severity=2)))
    found = keyed(doc)
    assert found is not None
    assert "time" not in found[2]
    assert Matcher([rb]).verdict(*found) is None  # neither ruled out nor accepted by the key's fields
    assert sound(Matcher([rb]), doc)  # the whole head rules it out (2026 is not before 2000)


def test_equal_keys_give_events_no_condition_tells_apart() -> None:
    """Severities 1, 1.0, True, -0.0, 0.0, "1": the key differs wherever the full decoder's typed values differ."""
    docs = []
    for severity in (1, 1.0, True, -0.0, 0.0, 0, "1", 2**70):
        finding = guardduty_finding("AKIAEXAMPLE000000001")
        finding["severity"] = severity
        docs.append(orjson.loads(envelope_bytes(finding)) if severity != 2**70 else {**orjson.loads(
            envelope_bytes(guardduty_finding("AKIAEXAMPLE000000001"))), "detail": finding})
    keys = [(found[1], _fields(found[0](found[1]), found[2])) for d in docs if (found := keyed(d)) is not None]
    assert len(keys) == 5  # a boolean, a string and a 64-bit overflow are not keyed (the whole head decides)
    for key, fields in keys:
        for other, other_fields in keys:
            if key == other:
                assert fields == other_fields


def test_a_key_that_cannot_build_is_never_ruled_out() -> None:
    """A build that raises (a severity float() refuses) is remembered as 'not ruled out'; the full path decides."""
    matcher = Matcher(SHIPPED)

    def broken(key: Any) -> Event:
        raise OverflowError(key)

    assert matcher.verdict(broken, ("x",), frozenset({"source", "type", "severity", "threat"})) is None


def test_the_verdict_memory_is_bounded() -> None:
    """At most MEMO keys are remembered per keyed head, whatever the stream's vocabulary."""
    rb = notify_runbook({"source": "guardduty",
                         "conditions": [{"field": "event.severity.score", "op": "ge", "value": 5}]})
    matcher = Matcher([rb])
    doc = orjson.loads(envelope_bytes(guardduty_finding("AKIAEXAMPLE000000001", severity=2)))
    found = keyed(doc)
    assert found is not None
    build, _, fields = found
    for i in range(MEMO + 10):
        assert isinstance(matcher.verdict(build, (f"Recon:IAMUser/T{i}", int, 2), fields), Event)
    assert 0 < len(matcher._verdicts[build]) <= MEMO
