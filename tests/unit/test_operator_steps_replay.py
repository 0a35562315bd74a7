"""Operator model steps read back at a restart are the operator's (`Handled.started`), not held by the engine, whose
step results eviction bounds by the open incidents."""

from __future__ import annotations

from responder.engine.recovery import replay
from responder.engine.state import EngineState
from responder.models.step import StepIntent, StepResult, StepStatus
from responder.models.timeline import EntryKind
from responder.timeline import MemoryStore, Recorder

KEY = "operator-" + "a" * 32


async def test_an_operator_model_step_read_back_at_a_restart_is_not_held_for_ever():
    """A replayed `models.* --via kafka` step's intent and result leave no step result or in-flight step held."""
    recorder = Recorder(MemoryStore())
    head = {"step": "operator", "actuator": "model.switch_version", "target": "m", "key": KEY}
    recorder.append(EntryKind.STEP_INTENT, StepIntent.model_validate(head).model_dump(mode="json"), None)
    cut_short = StepIntent.model_validate({**head, "key": KEY + "b"})  # a crash cut it short
    recorder.append(EntryKind.STEP_INTENT, cut_short.model_dump(mode="json"), None)
    recorder.append(EntryKind.STEP_RESULT, StepResult.model_validate({**head, "status": StepStatus.OK}).body(), None)
    await recorder.flush()
    state = EngineState()
    replay(state, recorder.entries())
    state.evict(4_000_000_000.0, {})
    assert state.results() == []
    assert state.inflight() == []
