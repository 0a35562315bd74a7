"""Taking up, once the service is back, what a crash cut short of a decided step's run (`Resumption`, mixed into
`Decisions`).

A decision, a timeout or a withdrawn request begins a run: the decided step (released, or denied), then the steps
after it that may run. The run records its end (`approval.settled`). Until then the state keeps the step *granted*
(released, no result yet) and then *continuing* (past: its result, skip or denial), live, in snapshots and fleet
slices alike, so a crash anywhere in the run leaves what the next `decide` or `expire` needs to finish it once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Literal

import structlog

from responder.engine.approvals import Parked
from responder.engine.incidents import Incident
from responder.engine.lastresort import escalates, record_missed
from responder.engine.positions import after_decided, step_index
from responder.engine.state import EngineState
from responder.errors import TimelineError
from responder.errors_kafka import ChangelogError
from responder.models.event import Event
from responder.models.plan import idempotency_key
from responder.models.runbook import Mode, Runbook
from responder.models.step import Failure, StepResult, StepStatus
from responder.models.timeline import EntryKind
from responder.timeline.recorder import Recorder
from responder.tracing import stamped

log = structlog.get_logger(__name__)

Resume = Callable[[Runbook, Incident, Event, int, Parked | None], Awaitable[None]]
"""Run a runbook's steps from an index; the parked step a human released, if any."""
EscalationRun = Literal["released", "resumed", "failed", "expired", "replaced"]
Escalate = Callable[[Runbook, Incident, Event, Parked, EscalationRun], Awaitable[None]]
"""Run a released `on_failure` step (not one of the runbook's steps) alone, with the parameters it was parked with:
`released`, or `resumed` when a crash cut its release short (its guards are checked again if it wrote no intent);
`failed`: a decided runbook step that did not pass, whose escalation (if it failed or timed out) a crash may have cut
short; `expired`: a runbook step its timeout has just denied, whose escalation runs now; or `replaced`: a runbook
step denied because the version of its runbook it waited under is no longer loaded, escalated with the loaded
version's `on_failure` (the Runbook passed), and nothing else of it run."""
Parking = tuple[str, str, str | None, float]
"""One parking of a step: its incident, step, request id and deadline. A step parked again gets a new id (a legacy one,
with no id, a new deadline); an escalation keeps the id and moves the deadline, so a bug after it has one more try,
at the escalated deadline, which then expires the step instead of escalating it again."""


def parking(p: Parked) -> Parking:
    """The parking a parked, granted or continuing step belongs to."""
    return p.incident, p.step, p.request_id, p.deadline


class Resumption:
    """Resumes the decided steps' runs a crash cut short (mixed into `Decisions`, whose collaborators it uses)."""

    state: EngineState
    recorder: Recorder
    resume: Resume
    escalate: Escalate
    _runbook_by_id: Callable[[str], Runbook | None]
    _dropped: set[Parking]
    """The parkings whose run, timeout or re-check a bug stopped in this process: not taken up again here while the
    state holds them (their state is kept, so a restart, or another replica that owns their partition next, does),
    until their incident's next finding (`retry_dropped`). A new parking of the same step is not one. Each is
    forgotten at the next sweep once the state no longer holds it (its run's end recorded, its partition handed
    over, its incident evicted: `_forget_dropped`), so a service up for months keeps only the dropped parkings still
    held; one whose partition comes back later is tried once more."""

    def _runbook(self, parked: Parked) -> Runbook | None:
        """The loaded runbook of a parked step, only if it is still the same version."""
        rb = self._runbook_by_id(parked.runbook.split("@", 1)[0])
        return rb if rb is not None and rb.ref == parked.runbook else None

    async def resolve_granted(self) -> int:
        """Take up, once, each decided step's run a crash cut short (read back from the timeline or a fleet slice);
        returns how many.

        A released step with no result yet: the executor resolves its open intent (verify, then apply only if
        needed) and never asks again. One that wrote no intent runs under its release, unattended now: that waives
        the runbook's own approval only, so a guard that trips now (a kill switch turned on meanwhile) parks it again,
        and the decision that released it, delivered again, is refused as used. A step past (`continuing`): the steps
        after it run, as the next alert would run them (a step done is skipped, an open intent resolved); a failed
        one's escalation is finished first. Each stays granted or continuing until its run's end is recorded, so a
        crash (or a hand-over) during this run leaves it to be taken up again.
        """
        self._forget_dropped()
        granted = [p for p in self.state.granted() if parking(p) not in self._dropped]
        for p in granted:
            await self._taken_up(p, self._resume_granted(p))
        # after the granted ones: one granted and then past is resumed as granted
        carried = [c for c in self.state.continuing() if parking(c[0]) not in self._dropped]
        for p, ok, _ in carried:
            if self.state.continues(p.incident, p.step):
                await self._taken_up(p, self._go_on(p, ok))
        if granted or carried:
            await self.recorder.flush()
        return len(granted) + len(carried)

    def runs_due(self) -> bool:
        """Whether a decided step's run a crash cut short waits to be taken up here (a fleet member asks before each
        sweep: the dropped parkings no longer held are forgotten here too)."""
        self._forget_dropped()
        dropped = self._dropped
        return any(parking(p) not in dropped for p in self.state.granted()) \
            or any(parking(c[0]) not in dropped for c in self.state.continuing())

    def _forget_dropped(self) -> None:
        """Forget the dropped parkings the state no longer holds (parked, granted or continuing, at that deadline)."""
        if self._dropped:
            held = {parking(p) for p in (*self.state.parked_steps(), *self.state.granted())}
            held.update(parking(c[0]) for c in self.state.continuing())
            self._dropped &= held

    def retry_dropped(self, incident: str) -> None:
        """A new finding of `incident` (not a redelivery): its parkings a bug stopped in this process are taken up
        again at the next sweep; a bug that is still there is logged and dropped again, once per finding."""
        if self._dropped:
            self._dropped = {d for d in self._dropped if d[0] != incident}

    async def _taken_up(self, p: Parked, run: Awaitable[None]) -> bool:
        """Run one taken-up run (or a timeout's expiry, or a re-check); whether it ended. A bug in it is logged and its
        parking dropped in this process only (its state kept, no `approval.settled` written), so it does not repeat at
        every sweep nor stop the others. A write the timeline or changelog refused (a disk error, a replica fenced)
        goes up as before: the service handles those."""
        key = parking(p)  # as it was taken up (an escalation moves the deadline in place)
        try:
            await run
        except (TimelineError, ChangelogError):  # the timeline or changelog refused a write (a fence): not a bug here
            raise
        except Exception:
            self._dropped.add(key)
            log.exception("decided_run_failed", step=p.step, incident=p.incident)
            return False
        return True

    async def _resume_granted(self, p: Parked) -> None:
        """Run a released step a crash cut short (and the steps after it), then record its run's end."""
        rb, incident = self._runbook(p), self.state.incidents.by_id.get(p.incident)
        with stamped(p.trace):  # the resumed step's entries carry the alert's trace
            if rb is None and incident is not None:  # its runbook replaced or removed since: it cannot run
                await self._unrunnable(p, incident)
            elif rb is None or incident is None:
                log.warning("granted_step_not_resumed", step=p.step, runbook=p.runbook)
            elif (index := step_index(rb, p.step)) is None:  # a released `on_failure` step: it alone, as released
                log.info("granted_step_resumed", step=p.step)  # (then the steps after)
                await self.escalate(rb, incident, Event.model_validate(p.event), p, "resumed")
            else:  # under its release, unattended now: a guard that trips parks it for a new decision
                log.info("granted_step_resumed", step=p.step)
                await self.resume(rb, incident, Event.model_validate(p.event), index, replace(p, unattended=True))
            self._settled(p)

    async def _go_on(self, p: Parked, ok: bool) -> None:
        """Run the steps after a decided step past whose run a crash cut short, then record that run's end. One that
        did not pass goes through the executor's `failed` run: its escalation is finished if it failed, then the
        steps after it run if it said `continue`."""
        rb, incident = self._runbook(p), self.state.incidents.by_id.get(p.incident)
        after = after_decided(rb, p.step, ok=ok) if rb is not None and not p.alone else None
        with stamped(p.trace):  # the steps' entries carry the alert's trace
            if rb is None and incident is not None and not ok:  # denied as its runbook was replaced or removed
                log.info("decided_run_resumed", step=p.step, at="replaced")
                await self._orphaned(p, incident, Event.model_validate(p.event))
            elif rb is None or incident is None:
                log.warning("decided_run_not_resumed", step=p.step, runbook=p.runbook)
            elif not ok and step_index(rb, p.step) is not None:
                log.info("decided_run_resumed", step=p.step, at="on_failure")
                await self.escalate(rb, incident, Event.model_validate(p.event), p, "failed")
            elif after is not None:
                log.info("decided_run_resumed", step=p.step, at=rb.steps[after].id)
                await self.resume(rb, incident, Event.model_validate(p.event), after, None)
            self._settled(p)

    async def _unrunnable(self, p: Parked, incident: Incident) -> None:
        """A released step a crash cut short, whose runbook is no longer loaded at its version after the restart: it
        cannot run under another version, so it is recorded failed (an open intent may have acted: verify() is not
        asked under a runbook no longer loaded) and escalated (`_orphaned`); an escalation step's failure is counted
        as a failed escalation."""
        key = idempotency_key(p.incident, p.runbook, p.step, p.target)
        acted = self.state.intent(key) is not None  # it may have: not permanent, so its quota run is not refunded
        result = StepResult(step=p.step, actuator=p.actuator, target=p.target, key=key, status=StepStatus.FAILED,
                            permanent=None if acted else True,
                            error=f"runbook {p.runbook} is no longer loaded: the released step did not run after the "
                                  "restart" + (" (its intent is recorded: it may have acted)" if acted else ""))
        self.recorder.append(EntryKind.STEP_RESULT, result.body(), incident.id)
        self.state.finish(result, incident.id)
        log.warning("granted_step_not_resumed", step=p.step, runbook=p.runbook)
        await self._orphaned(p, incident, Event.model_validate(p.event))

    async def _orphaned(self, p: Parked, incident: Incident, event: Event) -> None:
        """Escalate a runbook step denied by its timeout after the version of its runbook it waited under was replaced
        or removed (nobody could decide it: a decision is refused then): with the loaded version's `on_failure`, or,
        with no version loaded, or one in dry_run mode (its escalation would only be planned for a step that waited for
        real), the last resort, `escalation.missed`. An escalation step's own denial is not escalated
        (its `code: ApprovalTimeout` counts it as a failed escalation); nor is a denial recorded before this release
        (no `code`)."""
        failed = self.state.result(idempotency_key(p.incident, p.runbook, p.step, p.target))
        if "." in p.step or failed is None or not escalates(failed):  # `<escalation>.<failed step>`: kebab ids
            return
        current = self._runbook_by_id(p.runbook.split("@", 1)[0])
        if current is not None and current.mode is not Mode.DRY_RUN:
            await self.escalate(current, incident, event, p, "replaced")
        elif not self.state.escalated(p.incident, p.step):
            record_missed(self.recorder, p.incident, Failure.of(failed), "dry_run" if current else "runbook_removed",
                          runbook_was=p.runbook)
            self.state.escalate_failure(p.incident, p.step)

    def _settled(self, p: Parked) -> None:
        """The run a decision (or timeout) began has ended: recorded unless the step waits again, so a restart does
        not take up the steps after it a second time."""
        self.state.settle(p.incident, p.step)
        if self.state.parked(p.incident, p.step) is None:
            self.recorder.append(EntryKind.APPROVAL_SETTLED, {
                "step": p.step, **({"request_id": p.request_id} if p.request_id else {})}, p.incident)
