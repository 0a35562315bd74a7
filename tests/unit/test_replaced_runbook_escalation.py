"""A step parked under a runbook that was replaced or removed before its decision still reaches a human."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from responder.catalog import load_runbooks
from responder.engine.approvals import Parked
from responder.engine.partitions import cut, merge
from responder.engine.recovery import replay
from responder.engine.snapshot import EngineSnapshot
from responder.engine.state import EngineState
from responder.metrics import Metrics
from tests.escalation_kit import (
    CONTINUING,
    FULL,
    GATED,
    crash_after,
    lapse,
    metered,
    missed_escalations,
    told_escalations,
)
from tests.kit import DEACTIVATE_STEPS, ESCALATE, HEADER, Kit, decision, make_kit

TIMED = DEACTIVATE_STEPS.replace("    with:\n", "    approval: {required: true, timeout: 60, on_timeout: %s}\n"
                                                  "    with:\n")


def _reload(kit: Kit, tmp_path: Path, body: str | None) -> None:
    """Replace runbook `rb` by `body` (version 2), or remove it (None), as a hot reload does."""
    path = kit.runbooks_dir / "rb.yaml"
    if body is None:
        path.unlink()
        (kit.runbooks_dir / "other.yaml").write_text(HEADER.format(id="other") + DEACTIVATE_STEPS + ESCALATE)
    else:
        path.write_text(HEADER.format(id="rb") + "version: 2\n" + body)
    kit.engine.use_runbooks(load_runbooks(kit.runbooks_dir, kit.registry))


async def _parked_then_replaced(tmp_path: Path, body: str | None, on_timeout: str = "deny") -> tuple[Kit, Metrics]:
    kit = make_kit(tmp_path, {"rb": TIMED % on_timeout + ESCALATE})
    metrics = metered(kit)
    await kit.send()
    assert [p.step for p in kit.engine.state.parked_steps()] == ["deactivate"]
    _reload(kit, tmp_path, body)
    kit.clock.now += 61
    assert await kit.engine.expire() == 1
    await kit.engine.recorder.flush()
    return kit, metrics


async def test_a_timed_out_step_of_a_replaced_runbook_is_escalated_with_the_new_version(tmp_path):
    """A step timing out after its runbook got a new version is escalated with the new version's on_failure."""
    kit, metrics = await _parked_then_replaced(tmp_path, TIMED % "deny" + ESCALATE)
    assert told_escalations(kit) == [("oncall", "deactivate failed")]
    [escalated] = kit.entries("step.escalated")
    assert (escalated["runbook_was"], escalated["escalated_with"]) == ("rb@1", "rb@2")
    assert kit.entries("escalation.missed") == []
    assert missed_escalations(metrics, "rb") == 0


async def test_an_approved_by_timeout_step_of_a_replaced_runbook_is_escalated(tmp_path):
    """`on_timeout: approve` meant the step to act; it cannot under a replaced runbook, so on-call is told."""
    kit, _ = await _parked_then_replaced(tmp_path, TIMED % "deny" + ESCALATE, "approve")
    assert told_escalations(kit) == [("oncall", "deactivate failed")]


async def test_a_timed_out_step_of_a_replaced_runbook_without_on_failure_is_a_missed_escalation(tmp_path):
    """The new version has no on_failure: the last resort is recorded, logged and counted so the alert fires."""
    kit, metrics = await _parked_then_replaced(tmp_path, TIMED % "deny")
    [missed] = kit.entries("escalation.missed")
    assert (missed["step"], missed["reason"], missed["runbook_was"]) == ("deactivate", "no_on_failure", "rb@1")
    assert missed_escalations(metrics, "rb") == 1


async def test_a_timed_out_step_of_a_removed_runbook_is_a_missed_escalation(tmp_path):
    """No version of the runbook is loaded any more: the denial is recorded as a missed escalation and counted."""
    kit, metrics = await _parked_then_replaced(tmp_path, None)
    assert told_escalations(kit) == []
    [missed] = kit.entries("escalation.missed")
    assert (missed["step"], missed["reason"], missed["runbook_was"]) == ("deactivate", "runbook_removed", "rb@1")
    assert missed_escalations(metrics, "rb") == 1


async def _restarted_after_denial(kit: Kit) -> None:
    """Killed once the denial is durable, started again (with the runbooks on disk), swept twice: nothing left."""
    crash_after(kit, "step.result", "deactivate")
    kit.echo.applied.clear()
    for _ in range(2):
        await kit.engine.expire()
    await kit.engine.recorder.flush()


async def test_a_crash_before_the_escalation_of_a_replaced_runbooks_step_escalates_once_after_the_restart(tmp_path):
    """A crash after a replaced runbook step's denial is durable escalates it once on restart with the new version."""
    kit, _ = await _parked_then_replaced(tmp_path, TIMED % "deny" + ESCALATE)
    await _restarted_after_denial(kit)
    assert told_escalations(kit) == [("oncall", "deactivate failed")]
    [escalated] = kit.entries("step.escalated")
    assert escalated["escalated_with"] == "rb@2"


async def test_a_crash_before_a_removed_runbooks_missed_escalation_records_it_once_after_the_restart(tmp_path):
    """Killed once the denial is durable: the restart, the runbook gone, records the missed escalation, once."""
    kit, _ = await _parked_then_replaced(tmp_path, None)
    await _restarted_after_denial(kit)
    assert [m["reason"] for m in kit.entries("escalation.missed")] == ["runbook_removed"]


async def _escalation_parked_then_replaced(tmp_path: Path) -> tuple[Kit, Metrics, Parked]:
    """`deactivate` lapsed and its escalation step parked (its quota full), then its runbook replaced; the parked
    step."""
    kit = make_kit(tmp_path, {"rb": FULL + GATED % "stop"})
    metrics = metered(kit)
    kit.engine.state.windows.record("rb", "test.echo", kit.clock())  # the escalation's quota is full: it parks
    await kit.send()
    await lapse(kit)
    [parked] = kit.engine.state.parked_steps()
    _reload(kit, tmp_path, FULL + GATED % "stop")
    return kit, metrics, parked


async def test_a_parked_escalation_step_of_a_replaced_runbook_counts_as_a_failed_escalation(tmp_path):
    """A replaced runbook's parked escalation step denied at its timeout is a failed escalation, never re-escalated."""
    kit, metrics, parked = await _escalation_parked_then_replaced(tmp_path)
    assert parked.step == "tell.deactivate"
    await lapse(kit, 3601)
    [denied] = [b for b in kit.entries("step.result") if b["step"] == "tell.deactivate"]
    assert (denied["status"], denied["code"]) == ("denied", "ApprovalTimeout")
    assert metrics.value("responder_escalation_failures_total", runbook="rb", actuator="test.echo") == 1
    assert [b["step"] for b in kit.entries("step.escalated")] == ["deactivate"]


async def _released_then_restarted_under_a_new_version(tmp_path: Path, guards: str,
                                                      cut: str) -> tuple[Kit, dict[str, Any]]:
    """`deactivate` approved, version 2 of its runbook loaded, the process killed once the last `cut` entry of the step
    is durable and started again: the step's result after one sweep."""
    kit = make_kit(tmp_path, {"rb": guards + TIMED % "deny" + ESCALATE})
    await kit.send()
    assert await kit.engine.decide(*decision(kit, next(iter(kit.engine.state.incidents.by_id)), "deactivate"))
    _reload(kit, tmp_path, TIMED % "deny" + ESCALATE)
    crash_after(kit, cut, "deactivate")
    await kit.engine.expire()
    await kit.engine.recorder.flush()
    [failed] = [b for b in kit.entries("step.result") if b["step"] == "deactivate"]
    return kit, failed


async def test_a_released_step_a_crash_cut_short_is_escalated_when_the_restart_loads_a_new_version(tmp_path):
    """An approved step a crash cut short is recorded failed and escalated when the restart loads a new version."""
    kit, failed = await _released_then_restarted_under_a_new_version(tmp_path, "", "approval.decided")
    assert (failed["status"], failed["permanent"]) == ("failed", True)
    assert "no longer loaded" in failed["error"]
    assert [(b["step"], b["escalated_with"]) for b in kit.entries("step.escalated")] == [("deactivate", "rb@2")]
    assert [m for m in kit.echo.applied if m.target == "oncall"]


GO_ON = CONTINUING.replace("    on_failure: continue\n", "    on_failure: continue\n"
                           "    approval: {required: true, timeout: 60, on_timeout: deny}\n") + ESCALATE


async def _replaced_escalation_parked(tmp_path: Path) -> tuple[Kit, Parked]:
    """`deactivate` (`continue`) lapsed after its runbook got version 2, whose escalation step waits (full quota)."""
    kit = make_kit(tmp_path, {"rb": FULL + GO_ON})
    kit.engine.state.windows.record("rb", "test.echo", kit.clock())  # the escalation's quota is full: it parks
    await kit.send()
    _reload(kit, tmp_path, FULL + GO_ON)
    await lapse(kit)
    [parked] = kit.engine.state.parked_steps()
    return kit, parked


@pytest.mark.parametrize("verdict", ["approve", "deny", None])
async def test_a_replaced_runbooks_parked_escalation_never_runs_the_new_versions_steps_after_it(tmp_path, verdict):
    """However a replaced runbook's parked escalation step ends, none of the new version's later steps runs."""
    kit, parked = await _replaced_escalation_parked(tmp_path)
    assert (parked.step, parked.runbook) == ("tell.deactivate", "rb@2")
    if verdict is None:
        await lapse(kit, 3601)
    else:
        assert await kit.engine.decide(*decision(kit, parked.incident, "tell.deactivate", verdict))
    await kit.engine.recorder.flush()
    assert "after" not in [b["step"] for b in kit.entries("step.intent")]
    assert kit.engine.state.parked_steps() == []
    assert (told_escalations(kit) != []) is (verdict == "approve")


@pytest.mark.parametrize("cut", ["approval.decided", "step.result"])
async def test_a_replaced_runbooks_escalation_cut_short_by_a_crash_runs_nothing_after_it_on_restart(tmp_path, cut):
    """A crash after a replaced runbook's parked escalation step is approved runs no later step on restart."""
    kit, parked = await _replaced_escalation_parked(tmp_path)
    assert await kit.engine.decide(*decision(kit, parked.incident, "tell.deactivate"))
    crash_after(kit, cut, "tell.deactivate")
    assert kit.engine.state.granted() or kit.engine.state.continuing()
    for _ in range(2):
        await kit.engine.expire()
    await kit.engine.recorder.flush()
    assert "after" not in [b["step"] for b in kit.entries("step.intent")]
    assert kit.engine.state.granted() == []
    assert kit.engine.state.continuing() == []


async def test_a_fleet_slice_and_the_timeline_keep_a_replaced_runbooks_escalation_alone(tmp_path):
    """`alone` survives a changelog slice (hand-over) and a timeline replay, so no replica runs the steps after it."""
    kit, parked = await _replaced_escalation_parked(tmp_path)
    assert parked.alone
    [cut_slice] = cut(kit.engine.state, {parked.incident}).values()
    adopted = EngineState()
    merge(adopted, [EngineSnapshot.model_validate_json(cut_slice.model_dump_json())])
    assert [p.alone for p in adopted.parked_steps()] == [True]
    replayed = EngineState()
    replay(replayed, kit.engine.recorder.entries())
    assert [p.alone for p in replayed.parked_steps()] == [True]


@pytest.mark.parametrize("escalation", [ESCALATE, ""])
async def test_a_live_steps_lapse_under_a_new_dry_run_version_is_a_counted_missed_escalation(tmp_path, escalation):
    """A live step's lapse under a new `mode: dry_run` version is recorded live and counted as a missed escalation."""
    kit, metrics = await _parked_then_replaced(tmp_path, "mode: dry_run\n" + TIMED % "deny" + escalation)
    assert told_escalations(kit) == []
    [missed] = kit.entries("escalation.missed")
    assert (missed["step"], missed["reason"], missed["runbook_was"]) == ("deactivate", "dry_run", "rb@1")
    assert "dry_run" not in missed
    assert missed_escalations(metrics, "rb") == 1


async def test_a_released_step_that_may_have_acted_keeps_its_quota_run_when_the_restart_loads_a_new_version(tmp_path):
    """A released step that may have acted keeps its quota run when failed under a restart's new runbook version."""
    kit, failed = await _released_then_restarted_under_a_new_version(
        tmp_path, "guards: {quotas: [{actuator: aws.*, max: 5, window: 1h}]}\n", "step.intent")
    assert (failed["status"], failed.get("permanent")) == ("failed", None)
    assert kit.engine.state.windows.count("rb", "aws.*", 3600, kit.clock()) == 1


async def test_an_on_timeout_escalate_step_of_a_replaced_runbook_is_escalated_at_its_first_lapse(tmp_path):
    """An `on_timeout: escalate` step of a replaced runbook is denied and escalated at its first lapse."""
    kit, _ = await _parked_then_replaced(tmp_path, TIMED % "deny" + ESCALATE, "escalate")
    assert kit.entries("approval.escalated") == []
    assert told_escalations(kit) == [("oncall", "deactivate failed")]
    assert kit.engine.state.parked_steps() == []


async def test_an_approval_refused_because_the_runbook_was_replaced_escalates_at_once(tmp_path):
    """An approval refused because the step's runbook was replaced lapses the step at once and tells on-call."""
    kit = make_kit(tmp_path, {"rb": TIMED % "deny" + ESCALATE})
    await kit.send()
    _reload(kit, tmp_path, TIMED % "deny" + ESCALATE)
    incident = next(iter(kit.engine.state.incidents.by_id))
    assert not await kit.engine.decide(*decision(kit, incident, "deactivate", "approve"))
    await kit.engine.recorder.flush()  # a refusal is durable with the next group commit, not alone
    [rejected] = kit.entries("approval.rejected")
    assert "no longer loaded" in rejected["reason"]
    assert kit.engine.state.parked_steps() == []
    [denied] = [b for b in kit.entries("step.result") if b["step"] == "deactivate"]
    assert (denied["status"], denied["code"]) == ("denied", "ApprovalTimeout")
    assert told_escalations(kit) == [("oncall", "deactivate failed")]
    assert [b["escalated_with"] for b in kit.entries("step.escalated")] == ["rb@2"]
    crash_after(kit, "approval.settled", "deactivate")  # replayed: nothing parked, nothing taken up again
    assert await kit.engine.expire() == 0
    assert kit.engine.state.parked_steps() == []
    assert len(kit.entries("step.escalated")) == 1


async def test_a_denial_of_a_step_whose_runbook_was_replaced_is_recorded_and_ends_the_wait(tmp_path):
    """A denial of a step whose runbook was replaced is recorded and denies the step at once, paging nobody."""
    kit = make_kit(tmp_path, {"rb": TIMED % "escalate" + ESCALATE})
    await kit.send()
    _reload(kit, tmp_path, TIMED % "escalate" + ESCALATE)
    incident = next(iter(kit.engine.state.incidents.by_id))
    assert await kit.engine.decide(*decision(kit, incident, "deactivate", "deny"))
    assert kit.entries("approval.rejected") == []
    [decided] = kit.entries("approval.decided")
    assert (decided["step"], decided["decision"], decided["by"]) == ("deactivate", "deny", "alice")
    [denied] = [b for b in kit.entries("step.result") if b["step"] == "deactivate"]
    assert (denied["status"], denied.get("code"), denied["error"]) == ("denied", None, "denied by alice")
    assert kit.engine.state.parked_steps() == []
    assert [b["step"] for b in kit.entries("approval.settled")] == ["deactivate"]
    published = len(kit.publisher.sent)
    kit.clock.now += 3 * 61  # past the deadline, and past an `on_timeout: escalate` re-ask's
    assert await kit.engine.expire() == 0
    kit.start()
    assert await kit.engine.expire() == 0
    assert len(kit.publisher.sent) == published  # not asked again
    assert told_escalations(kit) == []
    assert kit.entries("step.escalated") == []
    assert kit.entries("escalation.missed") == []
    assert all(op != "update_access_key" for _, op, _ in kit.iam.calls)


async def test_a_denial_of_a_parked_escalation_step_of_a_replaced_runbook_is_applied(tmp_path):
    """A denial of a replaced runbook's parked escalation step is applied at once, counting no failed escalation."""
    kit, metrics, parked = await _escalation_parked_then_replaced(tmp_path)
    assert await kit.engine.decide(*decision(kit, parked.incident, "tell.deactivate", "deny"))
    [denied] = [b for b in kit.entries("step.result") if b["step"] == "tell.deactivate"]
    assert (denied["status"], denied.get("code"), denied["error"]) == ("denied", None, "denied by alice")
    assert kit.engine.state.parked_steps() == []
    assert metrics.value("responder_escalation_failures_total", runbook="rb", actuator="test.echo") == 0
