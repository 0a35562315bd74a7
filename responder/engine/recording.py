"""What the step path records beside a step's own run: a refusal by hard trips, the intent written (`run_step`'s
`on_intent`); and whether a succeeded step's state drifted, so it runs again.

`StepRecording` is the base of `FailureEscalation` and so of `StepRunning` (responder/engine/failing.py, steps.py),
mixed into `Engine`, whose collaborators it uses, so these cost no indirection.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from responder.engine.guards import Trip
from responder.engine.incidents import Incident
from responder.engine.readback import StepCall, verified
from responder.engine.state import EngineState
from responder.models.step import StepHead, StepIntent, StepResult, StepStatus
from responder.models.timeline import EntryKind
from responder.timeline.recorder import Recorder


class StepRecording:
    """Records a step's refusal and its intent; sees its drift (the base of `StepRunning`)."""

    recorder: Recorder
    clock: Callable[[], float]
    state: EngineState
    actions: int

    @staticmethod
    def _refusal(head: StepHead, hard: Sequence[Trip]) -> StepResult:
        """The result of a step refused by hard trips (recorded in production; a dry run plans its escalation)."""
        return StepResult(**head.body(), status=StepStatus.REFUSED, error="; ".join(t.detail for t in hard),
                          permanent=True)

    def _refused(self, head: StepHead, hard: Sequence[Trip], incident: Incident) -> StepResult:
        """Record a step refused by hard trips (a protected resource: never run, approval or not)."""
        refused = self._refusal(head, hard)
        self.recorder.append(EntryKind.STEP_RESULT, refused.body(), incident.id)
        self.state.finish(refused, incident.id)
        return refused

    async def _drifted(self, call: StepCall, key: str) -> bool:
        """Whether a succeeded step's desired state no longer holds (verified with the params it ran with)."""
        applied = self.state.applied_params(key)
        if applied is None:
            return False
        params = call.actuator.params.model_validate(applied)
        return not await verified(StepCall(call.actuator, params, call.ctx))

    def _intended(self, intent: StepIntent, incident: str | None) -> None:
        """`run_step`'s `on_intent`: the intent is written (stamped with the engine's clock when built), so the step
        is in flight and counts against quotas. A method, not a closure per step (four GC-tracked objects fewer
        alive while the step waits on the group commit)."""
        self.state.intend(intent, incident, intent.clock if intent.clock is not None else self.clock())
        self.actions += 1
