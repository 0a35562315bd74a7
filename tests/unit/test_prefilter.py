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
from responder.errors import EventRejected
from responder.models.event import Event, RawRecord
from responder.models.runbook import Runbook
from responder.normalise import decode_doc, head, parse
from responder.pipeline import Pipeline
from responder.rules.matcher import Matcher
from responder.timeline import MemoryStore, Recorder
from tests.conftest import CORPUS
from tests.fakes import FakeIam
from tests.findings import envelope_bytes, guardduty_finding

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = load_runbooks(ROOT / "runbooks", registry)
FIXTURES = ROOT / "tests" / "fixtures" / "events"
SAMPLES = sorted([*(CORPUS.glob("*/*.json") if CORPUS.is_dir() else []), *FIXTURES.glob("**/*.json")])


def _runbook(trigger: dict[str, Any], rid: str = "gen") -> Runbook:
    return Runbook.model_validate({"id": rid, "trigger": trigger,
                                   "steps": [{"id": "s", "actuator": "notify.log", "with": {"message": "m"}}]})


def _full(doc: Any) -> list[Event] | None:
    try:
        return decode_doc(doc)
    except EventRejected:
        return None


def _sound(matcher: Matcher, doc: Any) -> bool:
    """Whether the head ruled the document out; asserts that the full decode then matches nothing."""
    partial = head(doc)
    if partial is None or not matcher.rejects(*partial):
        return False
    events = _full(doc)
    if events is not None:
        assert [m for e in events for m in matcher.match(e)] == []
    return True


def _head_equals_full(doc: Any) -> None:
    partial, events = head(doc), _full(doc)
    if partial is None or events is None:
        return
    event, fields = partial
    assert len(events) == 1
    for name in fields:
        assert getattr(event, name) == getattr(events[0], name), name


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_head_fields_equal_the_full_events_and_never_hide_a_shipped_match(path: Path) -> None:
    """For every corpus/fixture record: head fields equal the decoded event's; shipped runbooks lose no match."""
    doc = parse(path.read_bytes())
    _head_equals_full(doc)
    _sound(Matcher(SHIPPED), doc)


def test_a_guardduty_finding_below_the_threshold_is_ruled_out_by_its_head() -> None:
    """The fast path is taken: a candidate runbook whose severity condition fails is decided on the head."""
    rb = _runbook({"source": "guardduty", "type": "*IAMUser/*",
                   "conditions": [{"field": "event.severity.score", "op": "ge", "value": 5}]})
    low = orjson.loads(envelope_bytes(guardduty_finding("AKIAEXAMPLE000000001", severity=2)))
    high = orjson.loads(envelope_bytes(guardduty_finding("AKIAEXAMPLE000000001", severity=8)))
    assert _sound(Matcher([rb]), low)
    assert not _sound(Matcher([rb]), high)


def test_a_runbook_reading_beyond_the_head_forces_the_full_decode() -> None:
    """A candidate whose conditions read resources (or an eq anchor on them) is never decided on the head."""
    doc = orjson.loads(envelope_bytes(guardduty_finding("AKIAEXAMPLE000000001", severity=2)))
    reads_resource = _runbook({"source": "guardduty", "conditions": [
        {"field": "event.resource.access_key.id", "op": "eq", "value": "AKIAOTHER"}]})
    assert head(doc) is not None
    assert not Matcher([reads_resource]).rejects(*head(doc))  # type: ignore[misc]


def test_the_pipeline_counts_a_ruled_out_event_as_unmatched() -> None:
    """prepare() on a ruled-out record finds nothing and counts one event, as the full path does."""
    rb = _runbook({"source": "guardduty", "conditions": [{"field": "event.severity.score", "op": "ge", "value": 5}]})
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
                                st.sampled_from(["8", "high", "2026-11-25T10:00:00Z", "nonsense", 1.7e9]),
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
    books = [_runbook(t, f"gen-{i}") for i, t in enumerate(triggers)] + (SHIPPED if with_shipped else [])
    _head_equals_full(doc)
    _sound(Matcher(books), doc)
