"""One step of a runbook through the engine against moto under protected ids or tags (`PROTECTED_STEP`): its
timeline and notifications, and the check that a hard guard trip refused, escalated and paged it."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson

PROTECTED_STEP = """\
id: protected-step
trigger: {source: guardduty, type: "*IAMUser/*"}
group_by: "${event.resource.access_key.id}"
steps:
  - id: contain
    actuator: %s
    with: %s
on_failure:
  - id: escalate-oncall
    actuator: notify.kafka.publish_message
    with: {topic: responder.notifications, title: "containment failed: ${failure.step}", severity: critical,
           fields: {error: "${failure.error}"}}
"""


async def one_protected_step(aws, tmp_path: Path, actuator: str, with_: dict, protected: str,
                             tags: dict | None = None,
                             runbook: str = PROTECTED_STEP) -> tuple[list[tuple[str, dict]], list]:
    """Run one step of `actuator` through the engine against moto under `protected` (and protected `tags`): its
    timeline's entries, and the notifications sent. `runbook`: the runbook's text, `PROTECTED_STEP` or one like it
    (its step `%s` actuator and `%s` parameters)."""
    engine, publisher = await protected_engine(aws, tmp_path, actuator, with_, protected, tags, runbook)
    return [(e.kind, e.body) for e in engine.recorder.entries()], publisher.sent


async def protected_engine(aws, tmp_path: Path, actuator: str, with_: dict, protected: str,
                           tags: dict | None = None, runbook: str = PROTECTED_STEP) -> tuple[Any, Any]:
    """`one_protected_step`'s run: the engine that ran the step (its recorder flushed), and the recording publisher."""
    from responder.actuators import registry
    from responder.actuators.base import ActuationContext
    from responder.catalog import load_runbooks
    from responder.engine import Engine
    from responder.engine.guards import GuardPolicy, Guards
    from responder.models import RawRecord
    from responder.models.runbook import Protected
    from responder.pipeline import Pipeline
    from responder.timeline import MemoryStore, Recorder
    from tests.findings import envelope_bytes, guardduty_finding
    from tests.integration.example_kit import RecordingPublisher

    books = tmp_path / "runbooks"
    books.mkdir()
    (books / "protected-step.yaml").write_text(runbook % (actuator, orjson.dumps(with_).decode()))
    publisher = RecordingPublisher()
    policy = GuardPolicy(protected=Protected(ids=[protected] if protected else [], tags=tags or {}))
    engine = Engine(Recorder(MemoryStore()), registry, aws, guards=Guards(policy),
                    context=ActuationContext(aws=aws, publisher=publisher))
    keyed = actuator + protected + orjson.dumps(with_, option=orjson.OPT_SORT_KEYS).decode()  # notify: paged per key
    access_key = "AKIA" + hashlib.sha256(keyed.encode()).hexdigest()[:16].upper()
    finding = envelope_bytes(guardduty_finding(access_key, finding_id=f"f-{access_key}"))
    await Pipeline(load_runbooks(books, registry), engine).handle(RawRecord(topic="t", value=finding))
    await engine.recorder.flush()
    return engine, publisher


async def refused_and_escalated(aws, tmp_path: Path, actuator: str, with_: dict, protected: str,
                                tags: dict | None = None) -> str:
    """Run one step of `actuator` through the engine against moto under `protected` (and protected `tags`): it is
    refused by a hard guard trip, never intended, escalated and paged; the trip's detail."""
    entries, sent = await one_protected_step(aws, tmp_path, actuator, with_, protected, tags)
    trips = [b for k, b in entries if k == "guard.tripped"]
    assert [(t["guard"], t["hard"]) for t in trips] == [("protected", True)], entries
    assert not [b for k, b in entries if k == "step.intent" and b.get("actuator") == actuator]
    assert [b["step"] for k, b in entries if k == "step.escalated"] == ["contain"]
    assert [body["title"] for _, body in sent] == ["containment failed: contain"], entries
    return str(trips[0]["detail"])
