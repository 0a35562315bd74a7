"""The engine's step path: resolve → already done? → guards, quotas, kill switch → approval → intent → apply → result.

`StepRunning` is mixed into `Engine` (responder/engine/executor.py), whose collaborators it uses, so a step costs no
indirection. A failed or refused step runs the runbook's `on_failure` steps through its base, `FailureEscalation`
(responder/engine/failing.py); what it records beside a step's run (a refusal, the intent written) and its drift
check are that base's own, `StepRecording` (responder/engine/recording.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog

from responder.actuators.base import ActuationContext
from responder.actuators.rebuilt import rebuild
from responder.actuators.registry import Registry
from responder.actuators.retry import VerifySettle
from responder.engine.approvals import RUNBOOK_APPROVAL, Parked
from responder.engine.decisions import Decisions
from responder.engine.failing import FailureEscalation, Outcome
from responder.engine.fleetguard import FleetGuard
from responder.engine.guards import Guards, Trip, reason_shape
from responder.engine.incidents import Incident
from responder.engine.planner import LazyPlan
from responder.engine.readback import StepCall, verified
from responder.engine.resolution import Invalid, NotNow, Resolved, resolve_step
from responder.engine.runner import run_step
from responder.engine.undone import UNDONE_CODE, Undone
from responder.models.event import Event
from responder.models.plan import idempotency_key
from responder.models.runbook import Mode, Runbook, Step
from responder.models.step import StepHead, StepIntent, StepResult, StepStatus
from responder.models.timeline import EntryKind

log = structlog.get_logger(__name__)
_DRY_RUN = Mode.DRY_RUN  # read once: on Python 3.11 an enum class's attribute costs ≈ 0.5 µs (`EnumType.__getattr__`)


def waives(asked: Sequence[str], reasons: Sequence[str]) -> bool:
    """Whether a release waives every reason a step is held for now: the runbook's approval, and each guard the
    human's request named (`asked`, matched by guard, scope and limits: `reason_shape`; none without a human)."""
    shapes = {reason_shape(r) for r in asked}
    return all(r == RUNBOOK_APPROVAL or reason_shape(r) in shapes for r in reasons)


def _changed(grant: Parked, actuator: str, target: str, values: dict[str, Any]) -> str | None:
    """Why a release does not cover the step as it resolves now (None: it does). The approval was asked for one
    actuator, target and parameters; a runbook edited under the same version (its step id kept) may name another
    actuator for them, which the approver never saw."""
    if grant.actuator != actuator:
        return (f"the step's actuator changed since the approval was requested: it was asked for {grant.actuator}, "
                f"the step now runs {actuator} (its runbook was edited under the same version)")
    if grant.params != values or grant.target != target:
        return "the step's parameters changed since the approval was requested"
    return None


_OK = Outcome.OK


class StepRunning(FailureEscalation):
    """Runs one runbook step for an incident, so no step key acts twice (mixed into `Engine`)."""

    registry: Registry
    context: ActuationContext
    verify_settle: VerifySettle | None
    guards: Guards
    fleet_guard: FleetGuard | None
    decisions: Decisions

    async def _run_step(self, rb: Runbook, step: Step, incident: Incident, event: Event, scope: dict[str, Any],
                        plan: LazyPlan, plan_trips: Sequence[Trip], grant: Parked | None, fresh: bool,
                        escalating: bool = False, alone: bool = False) -> Outcome:
        rec = self.recorder
        resolved = resolve_step(step, scope, self.registry)
        if isinstance(resolved, NotNow):
            rec.append(EntryKind.STEP_SKIPPED, {"step": step.id, "reason": "when", "condition": resolved.condition},
                       incident.id)
            if grant is not None:  # a released step whose `when` no longer holds: its run goes on past it
                self.state.passed(incident.id, step.id)
            return Outcome.SKIPPED if escalating else Outcome.OK
        if isinstance(resolved, Invalid):
            # a released step's result is keyed as the parked step (its run goes on past it, with its escalation)
            released = {"target": grant.target, "key": idempotency_key(incident.id, rb.ref, step.id, grant.target)} \
                if grant is not None else {}
            invalid = StepResult(step=step.id, actuator=step.actuator, status=StepStatus.FAILED,
                                 error=resolved.error, permanent=True, **released)
            rec.append(EntryKind.STEP_RESULT, invalid.body(), incident.id)
            self.state.finish(invalid, incident.id)  # as the replay does (a result without a key changes nothing)
            log.warning("step_params_invalid", step=step.id, error=resolved.error)
            return await self._failed(rb, incident, event, scope, plan, invalid, escalating,
                                      intended=resolved.intended)
        actuator, target, values = resolved.actuator, resolved.target, resolved.values
        key = idempotency_key(incident.id, rb.ref, step.id, target)
        head = StepHead.trusted(step=step.id, actuator=step.actuator, target=target, key=key)  # str values
        ctx = self.context.for_step(incident.id, key)
        call = StepCall(actuator, resolved.params, ctx, attempts=step.retries + 1, timeout=step.timeout,
                        settle=None if escalating else self.verify_settle)  # an escalation step's is not escalated
        dry = self.dry_run or rb.mode is _DRY_RUN
        done = self.state.result(key)
        if done is None and actuator.notifies and incident.notified:  # sent under another version of the runbook
            done = self.state.result(incident.notified.get(f"{step.id}\x1f{target}", ""))
        undone = self.state.undone(key)
        if done is None and grant is None and not escalating:  # undone under an earlier version of the runbook?
            done, undone = self.state.undone_as(incident.id, step.id, target, actuator.name)
        if done is not None and done.ok and grant is None and not escalating and undone is not None:
            # an operator undid it: their decision stands
            return await self._left_undone(rb, incident, event, scope, plan, head, done, undone, fresh)
        if done is not None and done.status.final and grant is None \
                and not (fresh and done.ok and not dry and await self._drifted(call, key)):
            # success and a human denial are final; a failure or refusal is not, so a forged event
            # cannot block containment when the real alert for the same target arrives. A success whose
            # state drifted (e.g. a key re-activated by hand) runs again on a new, distinct event.
            rec.append(EntryKind.STEP_SKIPPED, {**head.body(), "reason": "already_done"}, incident.id)
            incident.took_outputs(done, self.state.declared(done.actuator))
            if done.verified is False and step.id in incident.owed:  # a crash cut its escalation short: finish it
                await self._failed(rb, incident, event, scope, plan, done, escalating, resumed=True)
            return Outcome.OK if done.ok else Outcome.FAILED
        if dry and escalating and self.state.planned(key):  # planned for an earlier failure of the step: production
            rec.append(EntryKind.STEP_SKIPPED, {**head.body(), "reason": "already_done", "dry_run": True}, incident.id)
            return Outcome.OK  # would find its page done (on-call is told once per step and incident)
        # tuples: the common step trips nothing, and an empty tuple is no container for the collector to walk
        # while the step waits on the group commit (three empty lists were)
        trips = (*plan_trips, *await self.guards.check_step(rb, step.actuator, target, values, event,
                                                            self.state.windows, self.clock(), escalating=escalating,
                                                            notifies=actuator.notifies,
                                                            not_identifiers=actuator.not_identifiers))
        if self.fleet_guard is not None and self.fleet_guard.killed:
            trips = (*trips, Trip("kill_switch", "the fleet's kill switch is on: every step needs a human"))
        reasons = tuple([f"{t.guard}: {t.detail}" for t in trips]) if trips else ()
        if step.approval.required:
            reasons = (*reasons, RUNBOOK_APPROVAL)
        elif actuator.destructive:  # never waived, even if a runbook bypassed the loader
            reasons = (*reasons, f"{step.actuator} is destructive")
        if dry:
            preview = await actuator.plan(resolved.params, ctx)
            assumed = actuator.dry_run_outputs(resolved.params)
            hard = tuple([t for t in trips if t.hard]) if trips else ()
            refusal = self._refusal(head, hard) if hard else None
            rec.append(EntryKind.STEP_PLANNED, {**head.body(), "params": values, "summary": preview.summary,
                                                "dry_run": True, "digest": plan.get().digest,
                                                "would_require_approval": list(reasons),
                                                "would_refuse": refusal is not None,
                                                **({"refusal": refusal.error} if refusal is not None else {}),
                                                **({"failure": scope["failure"]} if escalating else {}),
                                                **({"assumed_outputs": assumed} if assumed else {})}, incident.id)
            incident.step_outputs[step.id] = {"result": assumed}  # later steps plan on what this one would return
            if escalating and refusal is None:
                self.state.plan(key, incident.id)
            if refusal is not None and not escalating:  # plan the escalation production's refusal would run, and end
                return await self._failed(rb, incident, event, scope, plan, refusal, escalating)  # as it would
            return Outcome.OK
        pending = self.state.intent(key)
        if pending is not None and pending.params == values and pending.actuator == step.actuator:
            # an intent is only written once guards and approvals passed: resolve it, never ask again; unless a guard
            # that stops automation tripped since (a kill switch turned on, a protected id added): then it acts only
            # if a human clears it, as a new step would, once verify() shows the crash cut it short before it acted
            if not any(t.hard or t.guard == "kill_switch" for t in trips):
                return await self._execute(rb, step, incident, event, scope, plan, resolved, call, head, escalating)
            if await verified(call):
                return await self._recovered(call, head, incident)
        if grant is not None and (changed := _changed(grant, step.actuator, target, values)) is not None:
            rec.append(EntryKind.APPROVAL_REJECTED, {**head.body(), "reason": changed}, incident.id)
            grant = None
        human = grant is not None and not grant.unattended
        # a human waives what their request asked (the runbook's approval and the guards it named), not a guard that
        # tripped since (a kill switch turned on after they read it); a release with no human at hand (a timeout, a
        # crash) waives the runbook's approval only
        approved = grant is not None and waives(grant.reasons if human else (), reasons)
        hard = tuple([t for t in trips if t.hard]) if trips else ()
        if hard or (reasons and not approved):
            for trip in trips:
                rec.append(EntryKind.GUARD_TRIPPED, {**head.body(), **trip.body()}, incident.id)
                log.warning("guard_tripped", step=step.id, guard=trip.guard, detail=trip.detail)
        if hard:
            return await self._failed(rb, incident, event, scope, plan, self._refused(head, hard, incident), escalating)
        if not human and (approved or not reasons) and self.fleet_guard is not None:
            full = await self.fleet_guard.acquire(step.actuator, key, self.clock(),
                                                  again=done is not None or pending is not None)
            if full is not None:
                rec.append(EntryKind.GUARD_TRIPPED, {**head.body(), **full.body()}, incident.id)
                log.warning("guard_tripped", step=step.id, guard=full.guard, detail=full.detail)
                reasons, approved = (*reasons, f"{full.guard}: {full.detail}"), False
        if reasons and not approved:
            waived = grant is not None  # its runbook's approval given: only the guard that tripped since is asked
            await self.decisions.park(rb, step, incident, event, target, values, plan.get().digest,
                                      [r for r in reasons if r != RUNBOOK_APPROVAL] if waived else list(reasons),
                                      waived=waived, alone=alone)
            return Outcome.PARKED
        return await self._execute(rb, step, incident, event, scope, plan, resolved, call, head, escalating)

    async def _left_undone(self, rb: Runbook, incident: Incident, event: Event, scope: dict[str, Any],
                           plan: LazyPlan, head: StepHead, done: StepResult, undone: Undone, fresh: bool) -> Outcome:
        """A step an operator undid in this incident is not applied again by a later event: recorded `step.skipped`
        (`undone`, with who undid it and the seq of the `undo.result`), and a new event's run tells on-call through the
        runbook's `on_failure` (as a failure: once per step and incident) that it was left undone; the run goes on."""
        self.recorder.append(EntryKind.STEP_SKIPPED, {**head.body(), "reason": "undone", **undone.body()}, incident.id)
        log.warning("step_left_undone", step=head.step, undone_by=undone.by, undone_seq=undone.seq)
        incident.took_outputs(done, self.state.declared(done.actuator))
        if fresh:
            left = StepResult(**head.body(), status=StepStatus.SKIPPED, reason="undone", code=UNDONE_CODE,
                              error=undone.says(event.id), permanent=True)
            await self._failed(rb, incident, event, scope, plan, left, False)
        return Outcome.OK

    async def _recovered(self, call: StepCall, head: StepHead, incident: Incident) -> Outcome:
        """Record a step whose open intent verify() shows applied (the crash came after it acted), with the outputs
        its lost reply carried read back (`outputs_now`), or recorded lost: later steps read them as the normal
        path's (`Incident.took_outputs`)."""
        rebuilt = await rebuild(call.actuator, call.params, call.ctx)
        recovered = StepResult(**head.body(), status=StepStatus.OK, changed=None, recovered=True, **rebuilt.fields())
        self.recorder.append(EntryKind.STEP_RESULT, recovered.body(), incident.id)
        self.state.finish(recovered, incident.id)
        return Outcome.OK

    async def _execute(self, rb: Runbook, step: Step, incident: Incident, event: Event, scope: dict[str, Any],
                       plan: LazyPlan, resolved: Resolved, call: StepCall, head: StepHead,
                       escalating: bool) -> Outcome:
        """Run a step cleared to act (or resolve its earlier intent), then escalate if it failed."""
        rec, key = self.recorder, str(head.key)
        pending = self.state.intent(key)
        if pending is not None and await verified(call):
            return await self._recovered(call, head, incident)
        previous = self.state.result(key)
        if previous is not None and previous.ok and previous.verified is False:  # still false after its settle: not a
            call = call._replace(settle=None)  # lag; read once, so a flood of re-applies cannot hold the chunk 5 s each
        # an open intent's before-state was read before its first attempt, which a crash may have cut short after a
        # partial change: reading it again would record that partial change as the state undo restores
        before = pending.before if pending is not None and pending.params == resolved.values \
            and pending.actuator == head.actuator else None  # another actuator's before-state is not this one's
        intent = StepIntent.trusted(step=head.step, actuator=head.actuator, target=head.target, key=head.key,
                                    params=resolved.values, destructive=resolved.actuator.destructive,
                                    runbook=rb.id, clock=self.clock(),  # params: the validated model's JSON dump
                                    **({"before": before} if before is not None else {}))
        marks = {"reapplied": True} if previous is not None and previous.ok else {}
        result = await run_step(rec, call, intent, incident=incident.id, on_intent=self._intended, marks=marks)
        self.state.finish(result, incident.id)
        if self.fleet_guard is not None:  # one that changed nothing gives back its fleet-wide slots
            await self.fleet_guard.settle(key, result)
        if result.ok:
            if result.verified is False and not escalating:  # applied, yet not in effect: escalated as a failure is
                await self._failed(rb, incident, event, scope, plan, result, escalating)
            return _OK  # the run goes on: the step acted and its outputs are there
        return await self._failed(rb, incident, event, scope, plan, result, escalating)
