"""A step recovered after a crash by the previous release (`recovered: true`, no `outputs`, no `outputs_rebuilt` nor
`outputs_lost`), read back from the timeline or from a fleet slice, lost every output its actuator declares: a later
step reading one fails and escalates rather than reading it as not set (an incident spanning a rolling deploy)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from responder.engine.incidents import Incident
from responder.engine.partitions import merge
from responder.engine.snapshot import EngineSnapshot
from responder.models.timeline import EntryKind
from tests.fakes import Killed
from tests.kit import ESCALATE, Kit
from tests.lost_kit import marker_kit

READ_VERDICT = """\
steps:
  - id: mark
    actuator: test.mark
    with: {target: t1, message: hello}
  - id: act
    actuator: test.echo
    when:
      - {field: steps.mark.result.verdict, op: eq, value: true}
    with: {target: t2, message: corroborated}
""" + ESCALATE


async def _recovered_by_the_previous_release(tmp_path: Path) -> Kit:
    """The mark's apply killed the process once it acted; the previous release, restarted, recorded it recovered
    as it did (no outputs); this release started on that timeline."""
    kit, marker = marker_kit(tmp_path, READ_VERDICT)
    marker.die_after = True
    with pytest.raises(Killed):
        await kit.send()
    kit.start()
    [intent] = [b for b in kit.entries("step.intent") if b["step"] == "mark"]
    [incident] = kit.engine.state.incidents.all()
    old = {**{k: intent[k] for k in ("step", "actuator", "target", "key")}, "status": "ok", "changed": None,
           "recovered": True}
    kit.engine.recorder.append(EntryKind.STEP_RESULT, old, incident.id)
    await kit.engine.recorder.flush()
    kit.start()
    return kit


def _mark(kit: Kit) -> dict[str, Any]:
    [incident] = kit.engine.state.incidents.all()
    return incident.step_outputs["mark"]


async def test_an_old_recovered_result_replayed_lost_every_declared_output(tmp_path: Path) -> None:
    """Replayed from the timeline, an old release's recovered result marks every declared output lost."""
    kit = await _recovered_by_the_previous_release(tmp_path)
    assert _mark(kit) == {"result": {}, "lost": ["message", "verdict"]}


@pytest.mark.parametrize("written", [None, {"result": {}}], ids=["no-entry", "empty-result"])
async def test_an_old_recovered_result_in_a_slice_lost_every_declared_output(tmp_path: Path,
                                                                              written: dict[str, Any] | None) -> None:
    """A previous release's fleet slice (no or an empty output for its recovered step) merges with every output lost."""
    kit = await _recovered_by_the_previous_release(tmp_path)
    snap = kit.engine.state.snapshot()
    [incident] = snap.incidents
    outputs: dict[str, dict[str, object]] = {} if written is None else {"mark": dict(written)}
    old = Incident(**{**incident.__dict__, "step_outputs": outputs})
    part = EngineSnapshot.model_validate_json(EngineSnapshot(incidents=[old], done=snap.done).model_dump_json())
    kit.engine.state.clear()
    merge(kit.engine.state, [part])
    assert _mark(kit) == {"result": {}, "lost": ["message", "verdict"]}


async def test_a_later_step_on_an_old_recovered_output_fails_and_escalates(tmp_path: Path) -> None:
    """The incident's next event finds the old recovered mark done, and the step reading its output fails, paged."""
    kit = await _recovered_by_the_previous_release(tmp_path)
    await kit.send(finding_id="second-finding")
    act = {str(b["step"]): b for b in kit.entries("step.result")}["act"]
    assert act["status"] == "failed"
    assert "its output 'verdict' was lost" in act["error"]
    assert [(p.target, p.message) for p in kit.echo.applied] == [("oncall", "act failed")]


async def test_a_recovered_result_whose_outputs_were_all_read_back_is_not_lost(tmp_path: Path) -> None:
    """This release's recovered result with every output read back feeds later steps live, replayed and merged."""
    kit, marker = marker_kit(tmp_path, READ_VERDICT)

    async def everything(p: Any, ctx: Any) -> dict[str, Any]:  # a read that gives back every declared output
        return {"message": marker.marks[p.target], "verdict": True}

    marker.outputs_now = everything  # type: ignore[method-assign]
    marker.die_after = True
    with pytest.raises(Killed):
        await kit.send()
    kit.start()
    await kit.send()
    results = {str(b["step"]): b for b in kit.entries("step.result")}
    assert results["mark"]["recovered"] is True
    assert "outputs_lost" not in results["mark"]
    assert results["act"]["status"] == "ok"
    [incident] = kit.engine.state.incidents.all()
    assert "lost" not in incident.step_outputs["mark"]
    kit.start()  # replayed from the timeline
    [incident] = kit.engine.state.incidents.all()
    assert "lost" not in incident.step_outputs["mark"]
    part = EngineSnapshot.model_validate_json(kit.engine.state.snapshot().model_dump_json())
    kit.engine.state.clear()
    merge(kit.engine.state, [part])  # merged from a fleet slice
    [incident] = kit.engine.state.incidents.all()
    assert "lost" not in incident.step_outputs["mark"]
