"""`Pipeline.prepare_batch` (the service's batch path) finds, refuses and counts exactly what `prepare` does."""

from __future__ import annotations

from typing import Any

import pytest

import responder.pipeline as pipeline_module
from responder.actuators.registry import registry
from responder.auth import signed_headers
from responder.engine import Engine
from responder.errors import ValidationFailed
from responder.ingest.authn import RecordAuthenticator
from responder.models.event import RawRecord
from responder.models.runbook import Runbook
from responder.pipeline import Pipeline, Prepared
from responder.timeline import MemoryStore, Recorder
from tests.fakes import FakeIam
from tests.findings import envelope_bytes, guardduty_finding

RUNBOOK = Runbook.model_validate({
    "id": "rb", "trigger": {"source": "guardduty", "type": "*IAMUser/*",
                            "conditions": [{"field": "event.severity.score", "op": "ge", "value": 5}]},
    "steps": [{"id": "s", "actuator": "notify.log", "with": {"message": "m"}}],
})
LOW = envelope_bytes(guardduty_finding("AKIAEXAMPLE000000001", severity=2))
HIGH = envelope_bytes(guardduty_finding("AKIAEXAMPLE000000002", severity=8))
# an unreadable time: ruled out by type and severity when low (the keyed head), dead-lettered when high
LOW_NO_TIME = envelope_bytes(guardduty_finding("AKIAEXAMPLE000000003", severity=2, updated="soon"))
HIGH_NO_TIME = envelope_bytes(guardduty_finding("AKIAEXAMPLE000000004", severity=8, updated="soon"))


def _batch() -> list[RawRecord]:
    """Every kind of record: ruled out, matching, poison, oversized, signed, forged, traced, other topics."""
    values: list[tuple[str, bytes, tuple[tuple[str, bytes], ...]]] = [
        ("a", LOW, ()), ("a", HIGH, ()), ("a", b"{not json", ()), ("a", b"[]", ()), ("a", b" " * 5000, ()),
        ("a", LOW, tuple(signed_headers("k", b"s", LOW))), ("a", HIGH, tuple(signed_headers("k", b"s", HIGH))),
        ("a", LOW, tuple(signed_headers("k", b"wrong", LOW))), ("a", LOW, (("traceparent", b"00-" + b"1" * 32
                                                                           + b"-" + b"2" * 16 + b"-01"),)),
        ("signed", LOW, ()), ("b", LOW, ()), ("b", b'{"unknown": "shape"}', ()), ("a", LOW, ()),
        ("a", LOW_NO_TIME, ()), ("a", HIGH_NO_TIME, ()), ("signed", LOW_NO_TIME, ()),
    ]
    return [RawRecord(topic=t, offset=i, value=v, headers=h) for i, (t, v, h) in enumerate(values)]


def _pipeline(**auth: Any) -> Pipeline:
    engine = Engine(Recorder(MemoryStore()), registry, FakeIam())
    return Pipeline([RUNBOOK], engine, max_record_bytes=4096, authenticator=RecordAuthenticator({"k": "s"}, **auth))


def _seen(prepared: Prepared) -> tuple[int, str | None, list[tuple[str, list[str]]]]:
    return prepared.record.offset, prepared.trace, [(e.id, [m.runbook.id for m in ms]) for e, ms in prepared.found]


def _metrics(p: Pipeline) -> dict[str, Any]:
    p.publish_counts()
    return {m.name: sorted((tuple(sorted(s.labels.items())), s.value) for s in m.samples
                           if s.name.endswith("_total"))
            for m in p.metrics.registry.collect() if m.name.startswith("responder_") and m.name != "responder_build"}


@pytest.mark.parametrize("require", [[], ["signed"], ["guardduty"], ["*"]])
def test_the_batch_path_equals_prepare_record_by_record(require: list[str]) -> None:
    """Same matches, same errors (by offset and type), same counters and metrics, whatever must be signed."""
    one, batch = _pipeline(require=require), _pipeline(require=require)
    found, failed = [], []
    for record in _batch():
        try:
            prepared = one.prepare(record)
        except Exception as exc:  # noqa: BLE001 - compared with the batch path's
            failed.append((record.offset, type(exc)))
            continue
        if prepared.found:
            found.append(_seen(prepared))
    got, errors = batch.prepare_batch(_batch())
    assert [_seen(p) for p in got] == found
    assert [(r.offset, type(e)) for r, e in errors] == failed
    assert batch.counters == one.counters
    assert _metrics(batch) == _metrics(one)
    assert failed  # the batch holds both kinds
    assert found
    if require in ([], ["signed"]):  # (otherwise every unsigned GuardDuty record is refused)
        assert (14, ValidationFailed) in failed  # a matching candidate with an unreadable time is poison
        assert 13 not in [offset for offset, _ in failed]  # but a finding no runbook can match is not


def _counting_heads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    built: list[int] = []
    real = pipeline_module.head

    def counting(doc: Any, fmt: str | None = None) -> Any:
        built.append(1)
        return real(doc, fmt)

    monkeypatch.setattr(pipeline_module, "head", counting)
    return built


@pytest.mark.parametrize("signed", [False, True], ids=["batch-path", "prepare-path"])
def test_a_record_its_key_shows_a_runbook_accepts_builds_no_whole_head(monkeypatch: pytest.MonkeyPatch,
                                                                       signed: bool) -> None:
    """A record whose keyed fields a candidate runbook accepts is decoded without building its whole head."""
    built = _counting_heads(monkeypatch)
    headers = tuple(signed_headers("k", b"s", HIGH)) if signed else ()
    found, failed = _pipeline().prepare_batch([RawRecord(topic="a", offset=0, value=HIGH, headers=headers)])
    assert [_seen(p)[0] for p in found] == [0]
    assert failed == []
    assert built == []


def test_a_matching_record_asks_its_head_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A matching record on the batch path builds its whole head once, not twice."""
    built = _counting_heads(monkeypatch)
    rb = Runbook.model_validate({**RUNBOOK.model_dump(mode="json", by_alias=True, exclude_none=True), "trigger": {
        "source": "guardduty", "type": "*IAMUser/*", "conditions": [
            {"field": "event.severity.score", "op": "ge", "value": 5}, {"field": "event.time", "op": "gt",
                                                                           "value": "2000"}]}})
    engine = Engine(Recorder(MemoryStore()), registry, FakeIam())
    pipeline = Pipeline([rb], engine, max_record_bytes=4096, authenticator=RecordAuthenticator({"k": "s"}))
    found, failed = pipeline.prepare_batch([RawRecord(topic="a", offset=0, value=HIGH, headers=())])
    assert [_seen(p)[0] for p in found] == [0]
    assert failed == []
    assert len(built) == 1


def test_each_prepared_record_carries_its_own_kafka_time() -> None:
    """In a batch, each matching record hands `act` its own Kafka time (`Prepared.stamped`), never a neighbour's."""
    values = [(HIGH, ()), (LOW, ()), (HIGH, tuple(signed_headers("k", b"s", HIGH))), (HIGH, ())]
    records = [RawRecord(topic="a", offset=i, value=v, headers=h, timestamp_ms=1_764_064_800_000 + 1_000 * i)
               for i, (v, h) in enumerate(values)]
    found, failed = _pipeline().prepare_batch(records)
    assert failed == []
    matching = [r for r in records if r.value is HIGH]
    assert [(p.record.offset, p.stamped) for p in found] == [(r.offset, r.stamped()) for r in matching]
    assert len({p.stamped for p in found}) == 3
