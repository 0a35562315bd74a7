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
