"""A step denied by its approval timeout is escalated once: live, after a crash, across a fleet hand-over; not an
escalation step's own timeout, not a legacy timeline's denial, and the following steps run only after `continue`."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
import yaml

from responder.engine.partitions import cut, merge
from responder.engine.state import EngineState
from responder.metrics import Metrics, TimelineMetrics
from responder.timeline import MemoryStore
from tests.escalation_kit import FULL, GATED, TIMED, crash_after, lapse, one_incident, timed_out_kit, told_escalations
from tests.kit import KEY, Kit, decision, make_kit


def _steps(kit: Kit, kind: str) -> list[str]:
    return [str(b["step"]) for b in kit.entries(kind)]


@pytest.mark.parametrize(("on_failure", "after"), [("continue", True), ("stop", False)])
async def test_the_steps_after_a_timed_out_step_run_after_its_escalation_only_if_it_said_continue(
        tmp_path, on_failure, after):
    """`continue`: the escalation, then the next step; `stop`: the escalation and nothing after it."""
    kit = make_kit(tmp_path, {"rb": GATED % on_failure})
    await kit.send()
    await lapse(kit)
    assert told_escalations(kit) == [("oncall", "deactivate failed"), *([("after", KEY)] if after else [])]
    assert _steps(kit, "step.escalated") == ["deactivate"]
    assert _steps(kit, "approval.settled") == ["deactivate"]


async def test_an_escalation_step_denied_by_its_timeout_is_not_escalated_again(tmp_path):
    """An escalation step parked by a full quota times out: it is denied, never escalated again (no loop)."""
    kit = make_kit(tmp_path, {"rb": FULL + GATED % "continue"})
    kit.engine.state.windows.record("rb", "test.echo", kit.clock())  # the quota is full
    await kit.send()
    await lapse(kit)  # the deactivation lapses; its escalation waits on the quota
    assert [p.step for p in kit.engine.state.parked_steps()] == ["tell.deactivate"]
    await lapse(kit, 3601)
    assert kit.engine.state.parked_steps() == []
    assert _steps(kit, "step.escalated") == ["deactivate"]
    denied = [b for b in kit.entries("step.result") if b["step"] == "tell.deactivate"]
    assert [(b["status"], b.get("code")) for b in denied] == [("denied", "ApprovalTimeout")]
    kit.start()  # and a restart does not escalate it either
    await lapse(kit)
    assert _steps(kit, "step.escalated") == ["deactivate"]


def _metered(kit: Kit) -> Metrics:
    """Metrics fed by the kit's timeline, with the escalation's quota (test.echo) already full: it parks."""
    metrics = Metrics()
    kit.engine.recorder.sinks.append(TimelineMetrics(
        metrics, runbook_of=lambda i: kit.engine.state.incidents.by_id[i].runbook))
    kit.engine.state.windows.record("rb", "test.echo", kit.clock())
    return metrics


async def test_an_escalation_denied_by_its_timeout_counts_as_a_failed_escalation(tmp_path):
    """An escalation denied by its own approval timeout counts in `responder_escalation_failures_total`."""
    kit = make_kit(tmp_path, {"rb": FULL + GATED % "stop"})
    metrics = _metered(kit)
    await kit.send()
    await lapse(kit)
    await lapse(kit, 3601)
    assert metrics.value("responder_escalation_failures_total", runbook="rb", actuator="test.echo") == 1


async def test_a_human_denial_of_a_parked_escalation_step_is_not_counted_as_a_failed_escalation(tmp_path):
    """A human who denies a parked escalation step decided: the failed-escalation alert does not fire."""
    kit = make_kit(tmp_path, {"rb": FULL + GATED % "stop"})
    metrics = _metered(kit)
    await kit.send()
    await lapse(kit)
    assert await kit.engine.decide(*decision(kit, one_incident(kit), "tell.deactivate", "deny"))
    await kit.engine.recorder.flush()
    assert metrics.value("responder_escalation_failures_total", runbook="rb", actuator="test.echo") == 0


def _legacy(kit: Kit, upto: str, step: str) -> None:
    """Rewrite the timeline as an older release wrote it (a timed-out denial has no `code`), killed after the last
    `upto` entry of `step`."""
    lines = []
    for line in kit.store.read().splitlines(keepends=True):
        entry = orjson.loads(line)
        if entry["kind"] == "step.result" and entry["body"].get("code") == "ApprovalTimeout":
            line = line.replace(b',"code":"ApprovalTimeout"', b"")
            assert b"ApprovalTimeout" not in line
        lines.append(line)
    rewritten = MemoryStore()
    rewritten.write(b"".join(lines))
    rewritten.sync()
    kit.store = rewritten
    crash_after(kit, upto, step)


@pytest.mark.parametrize("upto", ["step.result", "approval.expired"])
async def test_a_legacy_timed_out_denial_is_not_escalated_on_restart(tmp_path, upto):
    """A legacy timed-out denial with no `code` is not escalated on restart; the run finishes without paging."""
    kit = make_kit(tmp_path, {"rb": TIMED % "deny"})
    await kit.send()
    kit.clock.now += 61
    await kit.engine.expire()
    await kit.engine.recorder.flush()
    body = next(b for b in kit.entries("step.result") if b["step"] == "deactivate")
    assert body["code"] == "ApprovalTimeout"
    _legacy(kit, upto, "deactivate")
    assert kit.entries("step.escalated") == []
    kit.echo.applied.clear()
    await kit.engine.expire()
    await kit.engine.recorder.flush()
    assert told_escalations(kit) == []
    assert kit.entries("step.escalated") == []
    assert _steps(kit, "approval.settled") == ["deactivate"]


@pytest.mark.parametrize("upto", ["step.result", "step.escalated", "step.intent"])
async def test_a_timed_out_run_handed_over_in_a_fleet_slice_escalates_once(tmp_path, upto):
    """A run killed after its timed-out denial is carried in the fleet slice; the restoring replica escalates once."""
    kit = await timed_out_kit(tmp_path)
    assert told_escalations(kit) == [("oncall", "deactivate failed")]
    crash_after(kit, upto, "tell.deactivate" if upto == "step.intent" else "deactivate")
    if upto != "step.intent":  # killed before the escalation acted
        kit.echo.applied.clear()
    incident = one_incident(kit)
    [part] = cut(kit.engine.state, {incident}).values()
    moved = EngineState()
    merge(moved, [part.model_validate_json(part.model_dump_json())])
    kit.engine.state.restore(moved.snapshot())
    await kit.engine.expire()
    await kit.engine.expire()
    await kit.engine.recorder.flush()
    assert _steps(kit, "step.escalated") == ["deactivate"]
    told = [b for b in kit.entries("step.result") if b["step"] == "tell.deactivate"]
    assert len(told) == 1
    assert len(told_escalations(kit)) == 1
    assert _steps(kit, "approval.settled") == ["deactivate"]


async def test_a_decision_arriving_just_after_the_timeout_neither_runs_nor_escalates_again(tmp_path):
    """The human's approval lands after the timeout denied and escalated the step: it is refused, nothing runs."""
    kit = make_kit(tmp_path, {"rb": TIMED % "deny"})
    await kit.send()
    late = decision(kit, one_incident(kit), "deactivate", "approve")
    await lapse(kit)
    assert not await kit.engine.decide(*late)
    await kit.engine.expire()
    await kit.engine.recorder.flush()
    assert told_escalations(kit) == [("oncall", "deactivate failed")]
    assert _steps(kit, "step.escalated") == ["deactivate"]
    assert kit.iam.keys[KEY]["Status"] == "Active"


def test_the_failed_escalation_alert_fires_on_a_counter_first_seen_at_one():
    """The failed-escalation alert rule fires on a counter series new within its window whose first sample is 1."""
    rules = yaml.safe_load((Path(__file__).parents[2] / "deploy/prometheus/alerts.yml").read_text())["groups"]
    [rule] = [r for g in rules for r in g["rules"] if r["alert"] == "ResponderEscalationFailed"]
    expr = " ".join(rule["expr"].split())
    assert re.search(r"increase\(responder_escalation_failures_total\[(\d+)m\]\)", expr)
    assert re.search(r"responder_escalation_failures_total unless responder_escalation_failures_total offset", expr)
