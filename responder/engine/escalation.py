"""Releasing a parked `on_failure` step: it is not one of its runbook's steps, so it runs alone, as it was parked.

`EscalationRelease` is mixed into `Engine` (responder/engine/executor.py) on top of `StepRunning`, whose step path
(intent, apply, result) it ends in.
"""

from __future__ import annotations

from typing import Any

import structlog

from responder.engine.approvals import RUNBOOK_APPROVAL, Parked
from responder.engine.failing import Outcome
from responder.engine.guards import Trip
from responder.engine.incidents import Incident
from responder.engine.lastresort import escalates
from responder.engine.planner import LazyPlan
from responder.engine.positions import escalation_step
from responder.engine.readback import StepCall, verified
from responder.engine.resolution import Resolved
from responder.engine.steps import StepRunning, waives
from responder.models.event import Event
from responder.models.plan import idempotency_key
from responder.models.runbook import Mode, Runbook, Step
from responder.models.step import StepHead, StepResult, StepStatus
from responder.models.timeline import EntryKind

log = structlog.get_logger(__name__)


class EscalationRelease(StepRunning):
    """Runs a released escalation step (mixed into `Engine`)."""

    async def _released_escalation(self, rb: Runbook, incident: Incident, event: Event, plan: LazyPlan,
                                   parked: Parked, resumed: bool) -> Outcome:
        """Run an `on_failure` step a human released (or one a crash cut short after its release) with the parameters
        it was parked with (published in its request; the failure they were rendered from is not kept). It is not one
        of the runbook's steps and never escalates again; a dry run only plans it.

        With no intent written yet, its soft guards are checked again, as for a runbook step: a human's release
        waives the guards their request named, and a guard that tripped since (a kill switch turned on after they read
        it) parks it again; a release with no human at hand (its timeout, or `resumed`: a crash cut it short) waives
        none. An intent a crash left open is resolved without asking, unless the kill switch is on or the target is
        protected now: then one verify() shows applied is recorded, and one not applied is parked or refused."""
        esc = escalation_step(rb, parked.step)
        key = idempotency_key(incident.id, rb.ref, parked.step, parked.target)
        head = StepHead.trusted(step=parked.step, actuator=parked.actuator, target=parked.target, key=key)
        done = self.state.result(key)
        if done is not None and done.status.final:
            self.recorder.append(EntryKind.STEP_SKIPPED, {**head.body(), "reason": "already_done"}, incident.id)
            return Outcome.OK if done.ok else Outcome.FAILED
        try:
            if esc is None or esc.actuator != parked.actuator:  # before the lookup: it may name no actuator now
                raise ValueError(f"the runbook has no step or on_failure step {parked.step!r} for {parked.actuator} "
                                 "(edited without a new version?)")
            actuator = self.registry.get(parked.actuator)  # the loaded runbook's: checked against the registry
            params = actuator.params.model_validate(parked.params)
            if actuator.target(params) != parked.target:
                raise ValueError(f"they now name {actuator.target(params)!r}, not {parked.target!r}")
        except ValueError as exc:  # pydantic's ValidationError is one
            failed = StepResult(**head.body(), status=StepStatus.FAILED, error=f"invalid parameters: {exc}",
                                permanent=True)
            self.recorder.append(EntryKind.STEP_RESULT, failed.body(), incident.id)
            self.state.finish(failed, incident.id)
            return Outcome.FAILED
        ctx = self.context.for_step(incident.id, key)
        if self.dry_run or rb.mode is Mode.DRY_RUN:
            preview = await actuator.plan(params, ctx)
            self.recorder.append(EntryKind.STEP_PLANNED, {**head.body(), "params": parked.params, "dry_run": True,
                                                         "summary": preview.summary}, incident.id)
            return Outcome.OK
        hard = [t for t in await self.guards.check_step(rb, parked.actuator, parked.target, parked.params, event,
                                                        self.state.windows, self.clock(), escalating=True,
                                                        notifies=actuator.notifies,
                                                        not_identifiers=actuator.not_identifiers)
                if t.hard]
        call = StepCall(actuator, params, ctx, attempts=esc.retries + 1, timeout=esc.timeout)
        # an intent a crash left open is resolved without asking, as on the runbook's steps, unless a guard that stops
        # automation tripped since: then verify() decides, and one not applied goes through the guards below
        killed = self.guards.policy.killed() or (self.fleet_guard is not None and self.fleet_guard.killed)
        opened = self.state.intent(key) is not None
        if opened and (hard or killed) and await verified(call):
            return await self._recovered(call, head, incident)
        if hard:  # approved or not, a protected resource is never touched
            for trip in hard:
                self.recorder.append(EntryKind.GUARD_TRIPPED, {**head.body(), **trip.body()}, incident.id)
            self._refused(head, hard, incident)
            return Outcome.FAILED
        step = esc.model_copy(update={"id": parked.step})
        if (not opened or killed) and await self._parked_again(rb, step, incident, event, plan, parked, head, resumed):
            return Outcome.PARKED
        return await self._execute(rb, step, incident, event, {}, plan,
                                   Resolved(actuator, params, parked.target, dict(parked.params)), call, head,
                                   escalating=True)

    async def _escalated_again(self, rb: Runbook, incident: Incident, event: Event, scope: dict[str, Any],
                               plan: LazyPlan, failed: StepResult, *, resumed: bool = True) -> None:
        """Escalate a decided step that failed, was refused or was denied by its timeout (a human's denial has none):
        at once (`resumed` False), or finishing what a crash may have cut short: each `on_failure` step goes through
        the step path again (one done is skipped, an open intent resolved, a failure tried again, one never started
        runs)."""
        if escalates(failed):
            await self._failed(rb, incident, event, scope, plan, failed, False, resumed=resumed)

    async def _replaced_escalation(self, rb: Runbook, incident: Incident, event: Event, scope: dict[str, Any],
                                   plan: LazyPlan, parked: Parked) -> None:
        """Escalate with `rb`, the loaded version of its runbook, a step denied because the version it waited under
        is no longer loaded (`runbook_was` and `escalated_with` say so on `step.escalated`, or on `escalation.missed`
        when `rb` has no `on_failure`). Once: a crash after `step.escalated` finishes its escalation steps only."""
        failed = self.state.result(idempotency_key(incident.id, parked.runbook, parked.step, parked.target))
        if failed is not None:
            await self._failed(rb, incident, event, scope, plan, failed, False,
                               resumed=self.state.escalated(incident.id, parked.step),
                               origin={"runbook_was": parked.runbook, "escalated_with": rb.ref})

    async def _parked_again(self, rb: Runbook, step: Step, incident: Incident, event: Event, plan: LazyPlan,
                            parked: Parked, head: StepHead, resumed: bool) -> bool:
        """Park again a released escalation step, before its intent, if a soft guard its release does not waive trips
        now (a kill switch, a full quota; after a crash, its runbook's approval too: the grant was for the run the
        crash ended)."""
        human = not resumed and not parked.unattended
        actuator = self.registry.get(parked.actuator)
        trips = [*await self.guards.check_step(rb, parked.actuator, parked.target, parked.params, event,
                                               self.state.windows, self.clock(), escalating=True,
                                               notifies=actuator.notifies, not_identifiers=actuator.not_identifiers)]
        if self.fleet_guard is not None and self.fleet_guard.killed:
            trips.append(Trip("kill_switch", "the fleet's kill switch is on: every step needs a human"))
        reasons = [f"{t.guard}: {t.detail}" for t in trips]  # a new request names every trip, waived before or not
        if waives(parked.reasons if human else (), reasons):  # the human waived them all (or none trips)
            trips, reasons = [], []
        if step.approval.required and resumed:
            reasons.append(RUNBOOK_APPROVAL)
        if not reasons and not human and self.fleet_guard is not None:
            key = str(head.key)
            full = await self.fleet_guard.acquire(parked.actuator, key, self.clock(), again=self.state.result(
                key) is not None or self.state.intent(key) is not None)
            if full is not None:
                trips.append(full)
                reasons.append(f"{full.guard}: {full.detail}")
        for trip in trips:
            self.recorder.append(EntryKind.GUARD_TRIPPED, {**head.body(), **trip.body()}, incident.id)
            log.warning("guard_tripped", step=step.id, guard=trip.guard, detail=trip.detail)
        if reasons:
            await self.decisions.park(rb, step, incident, event, parked.target, dict(parked.params),
                                      plan.get().digest, reasons, alone=parked.alone)
        return bool(reasons)
