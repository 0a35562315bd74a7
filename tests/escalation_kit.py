"""Escalations over a kit (tests/kit.py): runbook texts whose steps are gated, refused or continued and escalate, a
crash after a durable entry, a timeout lapsed, an IAM that answers without applying, the escalations told and the
metrics counted, and an incident as the replica that takes it over has it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from responder.actuators.notify.kafka import KafkaNotify
from responder.actuators.notify.message import Ledger
from responder.engine.incidents import Incident
from responder.engine.partitions import cut, merge
from responder.engine.snapshot import EngineSnapshot
from responder.engine.state import EngineState
from responder.metrics import Metrics, TimelineMetrics
from responder.timeline import MemoryStore
from tests.kit import DEACTIVATE_STEPS, ESCALATE, KEY, WIPE, Kit, decision, make_kit

TIMED = DEACTIVATE_STEPS.replace("    with:\n", "    approval: {required: true, timeout: 60, on_timeout: %s}\n"
                                                  "    with:\n") + ESCALATE
PROTECTED = f"guards: {{protected: {{ids: [{KEY}]}}}}\n"
BY_STATUS = """\
on_failure:
  - id: page
    actuator: test.echo
    when: [{field: failure.status, op: eq, value: refused}]
    with: {target: security, message: "${failure.step} ${failure.status}: ${failure.error}"}
  - id: tell
    actuator: test.echo
    when: [{field: failure.status, op: eq, value: failed}]
    with: {target: oncall, message: "${failure.step} failed"}
"""
NEVER = BY_STATUS.replace("value: refused", "value: denied")  # neither `when` holds for a refusal
THEN = f"""\
  - id: after
    actuator: test.echo
    with: {{target: after, message: {KEY}}}
"""
GATED = """\
steps:
  - id: deactivate
    actuator: aws.iam.deactivate_access_key
    on_failure: %s
    approval: {required: true, timeout: 60, on_timeout: deny}
    with:
      user_name: "${event.resource.access_key.attributes.user_name}"
      access_key_id: "${event.resource.access_key.id}"
""" + THEN + ESCALATE
FULL = "guards: {quotas: [{actuator: test.*, max: 1, window: 1h}]}\n"
CONTINUING = f"""\
steps:
  - id: deactivate
    actuator: aws.iam.deactivate_access_key
    on_failure: continue
    with:
      user_name: "${{event.resource.access_key.attributes.user_name}}"
      access_key_id: "${{event.resource.access_key.id}}"
  - id: after
    actuator: aws.iam.deactivate_access_key
    with: {{user_name: ml-training, access_key_id: {KEY}}}
"""


def one_incident(kit: Kit) -> str:
    """The id of the kit's one incident."""
    return next(iter(kit.engine.state.incidents.by_id))


def crash_after(kit: Kit, kind: str, step: str) -> None:
    """SIGKILL once the last `kind` entry of `step` is durable, before anything after it is: the timeline keeps
    only what came up to it, and the service starts again from it."""
    lines = kit.store.read().splitlines(keepends=True)
    at = max(i for i, line in enumerate(lines)
             if (e := orjson.loads(line))["kind"] == kind and e["body"].get("step") == step)
    kept = MemoryStore()
    kept.write(b"".join(lines[:at + 1]))
    kept.sync()
    kit.store = kept
    kit.start()


async def decided(kit: Kit, verdict: str = "approve") -> None:
    """Send the finding and decide its wipe (`WIPE`) by alice."""
    await kit.send()
    assert await kit.engine.decide(*decision(kit, one_incident(kit), "wipe", verdict))


async def approved_then_crashed(kit: Kit, incident: str, step: str, stage: str) -> tuple[bytes, str, str]:
    """alice approves `step` of `incident` while the engine's decisions `stage` (`resume`, `escalate`) raises: a
    crash once the decision is durable, before the released step's intent; the decision."""

    async def crash(*args: object) -> None:
        raise RuntimeError("killed")

    setattr(kit.engine.decisions, stage, crash)
    approval = decision(kit, incident, step)
    with pytest.raises(RuntimeError, match="killed"):
        await kit.engine.decide(*approval)
    await kit.engine.recorder.flush()
    return approval


async def taken_up_raising(tmp_path, error: Exception) -> Kit:
    """A kit killed after its approved step's result, whose run, once taken up, raises `error`."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny"})
    await decided(kit)
    crash_after(kit, "step.result", "wipe")

    async def raising(*args: object) -> None:
        raise error

    kit.engine.decisions.resume = raising  # type: ignore[assignment]
    return kit


def told_escalations(kit: Kit) -> list[tuple[str, str]]:
    """(target, message) of every escalation the fake notifier delivered."""
    return [(p.target, p.message) for p in kit.echo.applied]


async def timed_out_kit(tmp_path: Path, on_timeout: str = "deny") -> Kit:
    """A kit whose gated deactivation waited past its timeout and was expired."""
    kit = make_kit(tmp_path, {"rb": TIMED % on_timeout})
    await kit.send()
    assert [p.step for p in kit.engine.state.parked_steps()] == ["deactivate"]
    kit.clock.now += 61
    assert await kit.engine.expire() == 1
    await kit.engine.recorder.flush()
    return kit


def answer_unapplied(kit: Kit) -> None:
    """Make the fake IAM answer update_access_key without applying it (the key stays Active: verify() is false)."""
    real = kit.iam.call

    async def call(service: str, operation: str, **kwargs: object) -> dict[str, object]:
        if operation == "update_access_key":
            kit.iam.calls.append((service, operation, dict(kwargs)))
            return {}
        return await real(service, operation, **kwargs)

    kit.iam.call = call  # type: ignore[method-assign]


def metered(kit: Kit) -> Metrics:
    """The kit's timeline counted into a fresh metrics registry."""
    metrics = Metrics()
    kit.engine.recorder.sinks.append(TimelineMetrics(
        metrics, runbook_of=lambda i: kit.engine.state.incidents.by_id[i].runbook))
    return metrics


def missed_escalations(metrics: Metrics, runbook: str, actuator: str = "aws.iam.deactivate_access_key") -> float:
    """`responder_escalation_failures_total` of `runbook`'s `actuator`."""
    return metrics.value("responder_escalation_failures_total", runbook=runbook, actuator=actuator)


async def lapse(kit: Kit, seconds: float = 61) -> None:
    """Let `seconds` pass (a step's timeout: 60s; an escalation step's default: an hour) and sweep."""
    kit.clock.now += seconds
    await kit.engine.expire()
    await kit.engine.recorder.flush()


def taken_over(kit: Kit) -> Incident:
    """The kit's one incident as another replica has it once it takes the incident over from its fleet slice."""
    [incident] = kit.engine.state.incidents.all()
    written = cut(kit.engine.state, {incident.id})[incident.id].model_dump_json()  # as the changelog keeps it
    taken = EngineState()
    merge(taken, [EngineSnapshot.model_validate_json(written)])
    return taken.incidents.by_id[incident.id]


def paging_kit(tmp_path: Path, runbook: str, **kw: Any) -> Kit:
    """A kit whose notify.kafka steps publish to the kit's memory publisher (with a ledger of their own: the shared
    actuator remembers the keys other tests delivered)."""
    kit = make_kit(tmp_path, {"rb": runbook}, **kw)
    notify = kit.registry.get("notify.kafka.publish_message")
    assert isinstance(notify, KafkaNotify)
    notify.ledger = Ledger()
    kit.engine.context = dataclasses.replace(kit.engine.context, publisher=kit.publisher)
    return kit


def paged(kit: Kit) -> list[dict[str, object]]:
    """The fields of every notification published on the notifications topic."""
    return [json.loads(value)["fields"] for topic, _, value in kit.publisher.sent
            if topic == "responder.notifications"]


def step_results(kit: Kit) -> list[tuple[str, str]]:
    """(step, status) of every `step.result` entry, in order."""
    return [(str(b["step"]), str(b["status"])) for b in kit.entries("step.result")]
