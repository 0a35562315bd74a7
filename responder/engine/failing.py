"""A failed or refused step's escalation: the runbook's `on_failure` steps, once per failed step and incident, or
the last resort (`escalation.missed`, responder/engine/lastresort.py) when none can tell anyone.

`FailureEscalation` is the base of `StepRunning` (responder/engine/steps.py), mixed into `Engine`: it runs each
escalation step through the step path (`_run_step`, StepRunning's), and finishes what a crash cut short of an
escalation (`Incident.owed`).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

import structlog

from responder.engine.approvals import Parked
from responder.engine.guards import Trip
from responder.engine.incidents import Incident
from responder.engine.lastresort import Missed, record_missed
from responder.engine.planner import LazyPlan
from responder.engine.recording import StepRecording
from responder.models.event import Event
from responder.models.runbook import Mode, Runbook, Step
from responder.models.step import Failure, StepResult
from responder.models.timeline import EntryKind

log = structlog.get_logger(__name__)


class Outcome(StrEnum):
    """How one step ended for now."""

    OK = "ok"
    FAILED = "failed"
    PARKED = "parked"
    SKIPPED = "skipped"  # an escalation step whose `when` did not hold (a runbook step's skip is OK)


class FailureEscalation(StepRecording):
    """Escalates a failed or refused step through the runbook's `on_failure` steps (the base of `StepRunning`)."""

    dry_run: bool

    async def _failed(self, rb: Runbook, incident: Incident, event: Event, scope: dict[str, Any],
                      plan: LazyPlan, failed: StepResult, escalating: bool, *, resumed: bool = False,
                      intended: str | None = None, origin: dict[str, str] | None = None) -> Outcome:
        """Run the runbook's `on_failure` steps with a failed or refused step as `${failure.…}`: each once per failed
        step and incident (id `<escalation>.<failed step>`); a failing one is recorded (and so counted, by the metrics
        that read the timeline), never escalated again; one that waits for a human or runs under a release is left.
        A run of an event the incident had already (`LazyPlan.redelivered`) that fails a step whose failure that
        event's run escalated already does not record `step.escalated` again (`Incident.was_escalated`: a dry run's
        stands only for a dry run): its escalation steps still go through the step path (a page sent is skipped, one
        that failed is tried again).
        `resumed`: what a crash may have cut short of a decided step's escalation (`_escalated_again`,
        responder/engine/escalation.py): `step.escalated` is recorded, marked `resumed`, only if its run had not yet.
        With no `on_failure` step, or each skipped by its `when`, the last resort: `escalation.missed`
        (responder/engine/lastresort.py). A dry run (a step a hard guard would refuse) plans the same: `step.escalated`
        and `escalation.missed` carry `dry_run`, each escalation step is `step.planned` once per key (`already_done`
        after, as production skips its page). `intended`: what a step whose parameters did not resolve was meant to
        act on; `origin`: the step waited under another version of the runbook (`runbook_was`, `escalated_with`), so
        an escalation step that parks is `alone` (nothing of this version runs after it)."""
        if escalating:
            return Outcome.FAILED
        failure, note, owed = Failure.of(failed, intended), origin or {}, incident.owed.get(failed.step)
        told = resumed and self.state.escalated(incident.id, failed.step)  # recorded before a crash
        ended = told and owed is None  # and its outcome too (`owed`: a crash cut it short, see `Incident.owed`)
        dry = self.dry_run or rb.mode is Mode.DRY_RUN
        if not rb.on_failure:
            incident.told(failed.step)  # before the last resort's flush writes the incident's slice (a fleet's)
            if not ended:
                self.state.escalate_failure(incident.id, failed.step)
                await self._last_resort(incident, event, plan, failure, "no_on_failure", dry, **note)
            return Outcome.FAILED
        ids = [f"{esc.id}.{failed.step}" for esc in rb.on_failure]
        again = plan.redelivered and incident.was_escalated(failed.step, event.id, dry_run=dry)  # told already
        if not told and not again and (owed is None or not owed.begun):
            self.recorder.append(EntryKind.STEP_ESCALATED, {**failure.model_dump(), "escalation": ids, **note,
                                                            "event_id": event.id,
                                                            **({"resumed": True} if resumed else {}),
                                                            **({"dry_run": True} if dry else {})}, incident.id)
            self.state.escalate_failure(incident.id, failed.step)
            incident.escalate(failed.step, event.id, dry_run=dry)
            log.warning("step_escalated", step=failed.step, actuator=failed.actuator, error=failure.error,
                        resumed=resumed, dry_run=dry)
            if not dry and not any(self.state.waits(incident.id, sid) for sid in ids):
                incident.owe(failed.step, ids)  # until its outcome: as the timeline's replay folds it
        escalation_scope = {**scope, "failure": failure.model_dump()}
        skipped = []
        for esc, sid in zip(rb.on_failure, ids, strict=True):
            if not self.state.waits(incident.id, sid):
                outcome = await self._run_step(rb, esc.model_copy(update={"id": sid}), incident, event,
                                               escalation_scope, plan, [], None, False, escalating=True,
                                               alone=origin is not None)
                if outcome is Outcome.SKIPPED:
                    skipped.append(sid)
        incident.told(failed.step)  # before the last resort's flush writes the incident's slice (a fleet's)
        if len(skipped) == len(ids) and not ended:  # nobody was told
            await self._last_resort(incident, event, plan, failure, "when", dry, escalation=skipped, **note)
        return Outcome.FAILED

    async def _last_resort(self, incident: Incident, event: Event, plan: LazyPlan, failure: Failure,
                           reason: Missed, dry: bool, **extra: str | list[str]) -> None:
        """`escalation.missed` for `failure`, once per failure of an event: not again when the incident had the
        event already (`LazyPlan.redelivered`) and its run recorded it (`Incident.missed`); a dry run's stands for
        nothing (recorded each time, as it pages nobody). A real one is remembered only once durable (flushed: the
        metrics count it, the page goes, only then), so neither this process nor a snapshot or fleet slice written
        before that holds one that a failed write or a crash lost: the redelivery records it. The slice that flush
        writes holds the escalation ended (`told`, set by the caller first) but not yet `missed`: a replica that takes
        the incident over before its next slice may page the redelivered alert once more, never lose its page."""
        if not dry and plan.redelivered and incident.missed.get(failure.step) == event.id:
            log.info("escalation_missed_already", step=failure.step, reason=reason)
            return
        record_missed(self.recorder, incident.id, failure, reason, dry_run=dry, event_id=event.id, **extra)
        if not dry:
            await self.recorder.flush()
            incident.missed[failure.step] = event.id

    async def _run_step(self, rb: Runbook, step: Step, incident: Incident, event: Event, scope: dict[str, Any],
                        plan: LazyPlan, plan_trips: Sequence[Trip], grant: Parked | None, fresh: bool,
                        escalating: bool = False, alone: bool = False) -> Outcome:
        """Run one step (here: an escalation step) through the step path: `StepRunning`'s."""
        raise NotImplementedError
