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


def test_trusted_step_models_equal_validated_ones() -> None:
    """`StepHead/StepIntent/StepResult.trusted` give the validated model: same fields, fields set, body and copy."""
    from responder.models.step import StepHead, StepIntent, StepResult, StepStatus

    head = {"step": "s", "actuator": "a.b", "target": "t", "key": "k"}
    for cls, extra in ((StepHead, {}), (StepIntent, {}), (StepIntent, {"params": {"x": [1, "y"]}, "clock": 1.5}),
                       (StepResult, {"status": StepStatus.OK, "changed": True, "prior": None})):
        fast, checked = cls.trusted(**head, **extra), cls(**head, **extra)
        assert fast == checked
        assert fast.model_fields_set == checked.model_fields_set
        assert fast.body() == checked.body()
        assert fast.model_copy(update={"target": "u"}).body() == checked.model_copy(update={"target": "u"}).body()
    first, second = StepIntent.trusted(**head), StepIntent.trusted(**head)
    assert first.params == {}
    assert first.params is not second.params  # a mutable default is never shared


def test_step_bodies_read_off_the_instance_equal_pydantic_json_dumps() -> None:
    """`body()` (read off the instance) equals `model_dump(mode="json", exclude_unset=True)`, extras included."""
    from responder.models.step import StepHead, StepIntent, StepResult, StepStatus

    head = {"step": "s", "actuator": "a.b", "target": "t", "key": "k"}
    cases = [StepHead(**head), StepHead(step="s", actuator="a"), StepIntent(**head, params={"x": [1, "y"]}, clock=1.5),
             StepIntent(**head, before={"status": "Active"}, source="cli"),  # an extra field a writer adds
             StepIntent.trusted(**head).model_copy(update={"before": {"a": 1}}),
             StepResult(**head, status=StepStatus.DENIED, reason="no", permanent=True),
             StepResult.trusted(**head, status=StepStatus.OK, changed=True, verified=None, prior=None,
                                after={"a": {"b": [1.5]}}, outputs={}, duration_ms=0.25, reapplied=True)]
    for model in cases:
        body = model.body()
        assert body == model.model_dump(mode="json", exclude_unset=True)
        assert all(type(v) is not StepStatus for v in body.values())  # the status as its JSON string
    assert StepResult(**head, status=StepStatus.FAILED).body()["status"] == "failed"


async def test_run_step_records_the_same_bodies_with_and_without_an_observing_actuator() -> None:
    """The intent carries `before` only from an actuator that observes; the result entry is the result's `body()`."""
    from typing import Any

    from pydantic import JsonValue

    from responder.actuators.base import ActuationContext
    from responder.engine.readback import StepCall
    from responder.engine.runner import run_step
    from responder.models.step import StepIntent, StepResult
    from responder.timeline.recorder import Recorder
    from responder.timeline.store import MemoryStore
    from tests.fakes import Echo, EchoParams

    class Seeing(Echo):
        name = "test.seeing"

        async def observe(self, p: EchoParams, ctx: ActuationContext) -> dict[str, JsonValue] | None:
            return {"status": "Active"}

    bodies: dict[str, Any] = {}
    for actuator in (Echo(), Seeing()):
        rec = Recorder(MemoryStore(), writer="w")
        appended: list[Any] = []
        rec.observers.append(appended.append)
        intent = StepIntent.trusted(step="s", actuator=actuator.name, target="K", key="k", params={"target": "k1"})
        call = StepCall(actuator, EchoParams(target="k1"), ActuationContext(aws=None))  # type: ignore[arg-type]
        result = await run_step(rec, call, intent, incident="i", marks={"reapplied": True})
        rec.close()
        written, done = [e.body for e in rec.entries()]
        assert done == result.body() == StepResult(**done).model_dump(mode="json", exclude_unset=True)
        assert appended[-1].body == done
        assert type(appended[-1].body["status"]) is str
        assert done["status"] == "ok"
        assert done["reapplied"] is True
        assert rec.verify().entries == 2
        bodies[actuator.name] = (written, done)
    assert "before" not in bodies["test.echo"][0]
    assert bodies["test.seeing"][0]["before"] == {"status": "Active"}
    assert bodies["test.echo"][1]["prior"] == {}  # nothing observed: apply's own word
    assert bodies["test.seeing"][1]["prior"] == {"status": "Active"}


def test_sealed_entries_of_many_kinds_hash_and_encode_like_the_reference() -> None:
    """Past the Sealer's kind cache (256 kinds) entries still seal to the canonical line and verify."""
    from responder.timeline.chain import canonical_json, entry_hash
    from responder.timeline.recorder import Recorder
    from responder.timeline.store import MemoryStore

    rec = Recorder(MemoryStore(), writer="w\u00e9")
    entries = [rec.append(f"kind.{i}", {"i": i}, None if i % 2 else f"inc-{i}") for i in range(300)]
    rec.flush_sync()
    lines = rec.store.read().splitlines(keepends=True)
    for entry, line in zip(entries, lines, strict=True):
        assert line == canonical_json(entry.model_dump(mode="json")) + b"\n"
        assert entry.hash == entry_hash(entry.prev, entry.seq, entry.writer, entry.at, entry.kind, entry.incident,
                                        canonical_json(entry.body))
    assert rec.verify().entries == 300
