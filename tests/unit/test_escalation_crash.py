"""A crash between `step.escalated` and its outcome (the escalation steps' entries or `escalation.missed`) is
finished after the restart, once: nobody is left untold that a containment failed."""

from __future__ import annotations

from pathlib import Path

import pytest

from responder.engine.partitions import cut, merge
from responder.engine.snapshot import EngineSnapshot
from responder.engine.state import EngineState
from tests.escalation_kit import TIMED, answer_unapplied, crash_after, told_escalations
from tests.kit import DEACTIVATE_STEPS, ESCALATE, MISSING_KEY, Kit, make_kit

NEVER = ESCALATE.replace("    actuator: test.echo\n",
                         "    actuator: test.echo\n    when: [{field: failure.code, op: eq, value: Nope}]\n")
"""An `on_failure` step whose `when` never holds: every failure is an `escalation.missed`."""


def _missed(kit: Kit) -> list[tuple[str, str]]:
    return [(b["step"], b["reason"]) for b in kit.entries("escalation.missed")]


async def _restarted_after(tmp_path: Path, body: str, cut_at: str, *, key: str | None = None,
                           unapplied: bool = False) -> Kit:
    """One finding handled by `body`, then the process killed once the step's last `cut_at` entry is durable."""
    kit = make_kit(tmp_path, {"rb": body})
    if unapplied:
        answer_unapplied(kit)
    await kit.send(**({"key": key} if key else {}))
    crash_after(kit, cut_at, "deactivate")
    if unapplied:
        answer_unapplied(kit)
    kit.echo.applied.clear()
    return kit


async def test_a_timed_out_step_cut_after_its_escalation_records_the_missed_escalation_once(tmp_path):
    """A timed-out step killed after `step.escalated`, every `when` failing, records `escalation.missed` once."""
    kit = make_kit(tmp_path, {"rb": (TIMED % "deny").replace(ESCALATE, NEVER)})
    await kit.send()
    kit.clock.now += 61
    assert await kit.engine.expire() == 1
    await kit.engine.recorder.flush()
    assert _missed(kit) == [("deactivate", "when")]
    crash_after(kit, "step.escalated", "deactivate")
    assert _missed(kit) == []
    for restart in (False, True):  # taken up once; a second restart finds the run ended
        if restart:
            kit.start()
        await kit.engine.expire()
        await kit.engine.recorder.flush()
        assert _missed(kit) == [("deactivate", "when")]
        assert len(kit.entries("step.escalated")) == 1


async def test_an_unverified_step_cut_after_its_escalation_records_the_missed_escalation_on_redelivery(tmp_path):
    """An unverified step killed after `step.escalated` records `escalation.missed` once on redelivery."""
    kit = await _restarted_after(tmp_path, DEACTIVATE_STEPS + NEVER, "step.escalated", unapplied=True)
    await kit.send()
    assert _missed(kit) == [("deactivate", "when")]
    assert len(kit.entries("step.escalated")) == 1
    await kit.send()
    kit.start()
    answer_unapplied(kit)
    await kit.send()
    assert _missed(kit) == [("deactivate", "when")]


async def test_an_unverified_step_cut_before_its_escalation_tells_on_call_on_redelivery(tmp_path):
    """An unverified step killed before `step.escalated` is escalated on redelivery, marked `resumed`, once."""
    kit = await _restarted_after(tmp_path, DEACTIVATE_STEPS + ESCALATE, "step.result", unapplied=True)
    assert kit.entries("step.escalated") == []
    await kit.send()
    assert told_escalations(kit) == [("oncall", "deactivate failed")]
    [escalated] = kit.entries("step.escalated")
    assert (escalated["status"], escalated.get("resumed")) == ("unverified", True)
    await kit.send()
    assert told_escalations(kit) == [("oncall", "deactivate failed")]


async def test_a_failed_step_cut_after_its_escalation_is_escalated_once_when_it_fails_again(tmp_path):
    """A failed step killed after `step.escalated` runs again on redelivery and, failing again, finishes it once."""
    kit = await _restarted_after(tmp_path, DEACTIVATE_STEPS + NEVER, "step.escalated", key=MISSING_KEY)
    await kit.send(key=MISSING_KEY)
    assert len(kit.entries("step.escalated")) == 1
    assert _missed(kit) == [("deactivate", "when")]


@pytest.mark.parametrize("handover", ["slice", "snapshot"])
async def test_an_escalation_cut_short_travels_with_its_incident(tmp_path, handover):
    """What a crash left owed of an escalation is in the incident's fleet slice and snapshot, for the next replica."""
    kit = await _restarted_after(tmp_path, DEACTIVATE_STEPS + NEVER, "step.escalated", unapplied=True)
    state = kit.engine.state
    if handover == "slice":
        adopted = EngineState()
        merge(adopted, [EngineSnapshot.model_validate_json(s.model_dump_json())
                        for s in cut(state, set(state.incidents.by_id)).values()])
    else:
        adopted = EngineState()
        adopted.restore(EngineSnapshot.model_validate_json(state.snapshot().model_dump_json()))
    kit.engine.state.restore(adopted.snapshot())
    await kit.send()
    assert _missed(kit) == [("deactivate", "when")]


TWO = ESCALATE + """\
  - id: ticket
    actuator: test.echo
    with: {target: tickets, message: "${failure.step} failed"}
"""
"""Two `on_failure` steps with different actions (a page, then a ticket): each must run once."""


@pytest.mark.parametrize("key", [None, MISSING_KEY], ids=["unverified", "failed"])
async def test_a_crash_between_two_escalation_steps_runs_the_second_once(tmp_path, key):
    """A crash between two escalation steps makes the redelivery run the second once, paging nobody again."""
    kit = make_kit(tmp_path, {"rb": DEACTIVATE_STEPS + TWO})
    sent = {"key": key} if key else {}
    if key is None:
        answer_unapplied(kit)
    await kit.send(**sent)
    assert told_escalations(kit) == [("oncall", "deactivate failed"), ("tickets", "deactivate failed")]
    crash_after(kit, "step.result", "tell.deactivate")
    if key is None:
        answer_unapplied(kit)
    kit.echo.applied.clear()
    await kit.send(**sent)
    assert told_escalations(kit) == [("tickets", "deactivate failed")]
    assert len(kit.entries("step.escalated")) == 1
    await kit.send(**sent)
    assert told_escalations(kit) == [("tickets", "deactivate failed")]
