"""The outputs of a step whose reply was lost: a retry that finds the change in place (settled by verify()) and an
open intent resolved after a crash rebuild them by a read (`outputs_now`), and a later step reading one no read
gives back fails, naming the step and the output, and escalates: never read as not set, never a silent skip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from responder.actuators.base import ActuationContext
from responder.actuators.rebuilt import rebuild
from responder.actuators.retry import settled_by_verify
from responder.engine.snapshot import EngineSnapshot
from responder.models.step import StepResult
from tests.fakes import EchoParams, FakeIam, Killed
from tests.kit import ESCALATE, Kit
from tests.lost_kit import MARK, Marker, marker_kit

READ_MESSAGE = MARK + """\
  - id: note
    actuator: test.echo
    with: {target: t2, message: "got ${steps.mark.result.message}"}
"""
READ_VERDICT = MARK + """\
  - id: act
    actuator: test.echo
    when:
      - {field: steps.mark.result.verdict, op: eq, value: true}
    with: {target: t2, message: corroborated}
""" + ESCALATE
SKIPPED_ANYWAY = MARK + """\
  - id: act
    actuator: test.echo
    when:
      - {field: event.severity.score, op: lt, value: 0}
      - {field: steps.mark.result.verdict, op: eq, value: false}
    with: {target: t2, message: never}
""" + ESCALATE


def _results(kit: Kit) -> dict[str, dict[str, Any]]:
    return {str(b["step"]): b for b in kit.entries("step.result")}


async def _crashed_then_redelivered(kit: Kit, marker: Marker) -> None:
    """The process killed once the mark is made (its intent durable, no result), started again, the event again."""
    marker.die_after = True
    with pytest.raises(Killed):
        await kit.send()
    kit.start()
    await kit.send()


def _read_back_and_fed(kit: Kit, marker: Marker) -> dict[str, Any]:
    """The mark applied once, recorded with the text read back and `verdict` lost, and the note given that text;
    the mark's result."""
    mark = _results(kit)["mark"]
    assert marker.applies == 1
    assert (mark["status"], mark["outputs"]) == ("ok", {"message": "hello"})
    assert (mark["outputs_rebuilt"], mark["outputs_lost"]) == (True, ["verdict"])
    assert _results(kit)["note"]["status"] == "ok"
    assert [p.message for p in kit.echo.applied] == ["got hello"]
    return mark


async def test_settled_by_verify_rebuilds_outputs_for_later_steps(tmp_path: Path) -> None:
    """A lost reply settled by verify() records the outputs read back, and a later step reads them."""
    kit, marker = marker_kit(tmp_path, READ_MESSAGE)
    marker.lose_replies = 1
    await kit.send()
    assert _read_back_and_fed(kit, marker)["verified"] is True


async def test_settled_by_verify_lost_output_fails_the_reader_and_escalates(tmp_path: Path) -> None:
    """A `when` reading an output the settle could not read back fails naming step and output, and escalates."""
    kit, marker = marker_kit(tmp_path, READ_VERDICT)
    marker.lose_replies = 1
    await kit.send()
    results = _results(kit)
    assert results["mark"]["outputs"] == {"message": "hello"}
    assert results["mark"]["outputs_lost"] == ["verdict"]
    assert results["act"]["status"] == "failed"
    assert "steps.mark.result.verdict" in results["act"]["error"]
    assert "step mark" in results["act"]["error"]
    assert "lost" in results["act"]["error"]
    assert "step.skipped" not in kit.kinds()
    assert [(p.target, p.message) for p in kit.echo.applied] == [("oncall", "act failed")]


async def test_unreadable_outputs_are_all_lost(tmp_path: Path) -> None:
    """When no read gives the outputs back, every declared one is recorded lost and a reader of any fails."""
    kit, marker = marker_kit(tmp_path, READ_MESSAGE + ESCALATE)
    marker.lose_replies, marker.readable = 1, False
    await kit.send()
    results = _results(kit)
    assert results["mark"]["outputs"] == {}
    assert results["mark"]["outputs_rebuilt"] is False
    assert results["mark"]["outputs_lost"] == ["message", "verdict"]
    assert results["note"]["status"] == "failed"
    assert "its output 'message' was lost" in results["note"]["error"]
    assert [(p.target, p.message) for p in kit.echo.applied] == [("oncall", "note failed")]


async def test_a_when_that_fails_without_the_lost_output_still_skips(tmp_path: Path) -> None:
    """A step whose `when` fails on a test reading no lost output is skipped, as whatever the output held."""
    kit, marker = marker_kit(tmp_path, SKIPPED_ANYWAY)
    marker.lose_replies = 1
    await kit.send()
    assert "act" not in _results(kit)
    [skipped] = kit.entries("step.skipped")
    assert skipped["step"] == "act"
    assert skipped["condition"].startswith("event.severity.score lt")
    assert kit.echo.applied == []


async def test_lost_outputs_survive_a_restart(tmp_path: Path) -> None:
    """The lost outputs are rebuilt from the timeline on restart and kept by a snapshot, for a later reader to fail."""
    kit, marker = marker_kit(tmp_path, READ_VERDICT)
    marker.lose_replies = 1
    await kit.send()
    kit.start()
    [incident] = kit.engine.state.incidents.all()
    assert incident.step_outputs["mark"]["lost"] == ["verdict"]
    snapshot = EngineSnapshot.model_validate_json(kit.engine.state.snapshot().model_dump_json())
    kit.engine.state.restore(snapshot)
    [restored] = kit.engine.state.incidents.all()
    assert restored.step_outputs == incident.step_outputs  # a list both ways, not a tuple replayed


async def test_crash_recovery_rebuilds_outputs_for_later_steps(tmp_path: Path) -> None:
    """An open intent resolved by verify() after a crash records its outputs read back; a later step reads them."""
    kit, marker = marker_kit(tmp_path, READ_MESSAGE)
    await _crashed_then_redelivered(kit, marker)
    assert _read_back_and_fed(kit, marker)["recovered"] is True


async def test_crash_recovery_lost_output_fails_the_reader_and_escalates(tmp_path: Path) -> None:
    """After a crash, a `when` on an output no read gives back fails naming step and output, and escalates."""
    kit, marker = marker_kit(tmp_path, READ_VERDICT)
    await _crashed_then_redelivered(kit, marker)
    results = _results(kit)
    assert results["mark"]["recovered"] is True
    assert results["act"]["status"] == "failed"
    assert "its output 'verdict' was lost" in results["act"]["error"]
    assert "step.skipped" not in kit.kinds()
    assert [(p.target, p.message) for p in kit.echo.applied] == [("oncall", "act failed")]


async def test_settled_by_verify_carries_rebuilt_and_lost() -> None:
    """`settled_by_verify` answers the outputs `outputs_now` read, with which declared ones are lost."""
    marker = Marker()
    p = EchoParams(target="t1", message="hi")
    ctx = ActuationContext(aws=FakeIam())
    marker.marks["t1"] = "hi"
    done = await settled_by_verify(marker, p, ctx)()
    assert done is not None
    assert (done.outputs, done.outputs_rebuilt, done.outputs_lost) == ({"message": "hi"}, True, ["verdict"])


async def test_a_failing_read_loses_every_output() -> None:
    """`outputs_now` raising (a bug, an AWS error) loses every declared output and never the result."""
    marker = Marker()

    async def broken(p: EchoParams, ctx: ActuationContext) -> dict[str, Any]:
        raise KeyError("Snapshots")

    marker.outputs_now = broken  # type: ignore[method-assign]
    got = await rebuild(marker, EchoParams(target="t1"), ActuationContext(aws=FakeIam()))
    assert got.fields() == {"outputs": {}, "outputs_rebuilt": False, "outputs_lost": ["message", "verdict"]}


def test_an_entry_written_before_reads_as_before() -> None:
    """A result written before the fields existed reads with neither, and its body keeps its bytes."""
    old = {"step": "mark", "actuator": "test.mark", "status": "ok", "changed": True, "verified": True, "outputs": {}}
    result = StepResult.read(old)
    assert result.outputs_rebuilt is None
    assert result.outputs_lost is None
    assert result.body() == old
