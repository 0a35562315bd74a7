"""Parking steps for a human, and releasing them: signed decisions, and `on_timeout` when nobody decides in time.

A released step stays *granted* in the state until its result is recorded, then *continuing* until its run
records its end (`approval.settled`). If the process dies in between, its decision is no longer pending (the
redelivered decision is refused as used): the next `decide` or `expire` takes the run up once
(responder/engine/resumption.py), through the executor, which verifies an open intent and applies only if the desired
state does not hold. A step parked only because a quota could not be counted yet is re-checked by `Rechecks`
(responder/engine/rechecks.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import structlog

from responder.actuators.base import Publisher
from responder.auth import KeyRing, bounded
from responder.engine.approvals import (
    RUNBOOK_APPROVAL,
    TIMED_OUT,
    Parked,
    accept_decision,
    decision_id,
    new_request_id,
)
from responder.engine.asking import Asking
from responder.engine.guards import UNCOUNTED
from responder.engine.incidents import Incident
from responder.engine.positions import after_decided, escalation_step, step_index
from responder.engine.rechecks import Rechecks
from responder.engine.refusals import Refusals
from responder.engine.resumption import Escalate, Resume, parking
from responder.engine.state import EngineState
from responder.errors import ApprovalRefused, Refusal
from responder.models.approval import ApprovalDecision
from responder.models.event import Event
from responder.models.plan import idempotency_key
from responder.models.runbook import OnTimeout, Runbook, Step
from responder.models.step import StepResult, StepStatus
from responder.models.timeline import EntryKind
from responder.timeline.recorder import Recorder
from responder.tracing import current_stamp, event_trace, stamped

log = structlog.get_logger(__name__)

class Decisions(Rechecks):
    """Applies decisions and timeouts to the parked steps of an `EngineState`."""

    def __init__(self, state: EngineState, recorder: Recorder, *, keys: KeyRing, publisher: Publisher | None,
                 requests_topic: str, clock: Callable[[], float], runbook: Callable[[str], Runbook | None],
                 resume: Resume, escalate: Escalate) -> None:
        self.state = state
        self.recorder = recorder
        self.keys = keys
        self.clock = clock
        self._runbook_by_id = runbook
        self.resume = resume
        self.escalate = escalate
        self._dropped = set()
        self.refusals = Refusals(recorder, clock, known=keys.has)
        self.asking = Asking(state, publisher, requests_topic, clock, lambda: recorder.signer)
        self.unsent = self.asking.unsent  # (incident, step) -> the request id Kafka did not take

    @property
    def publisher(self) -> Publisher | None:
        """Where the parked steps' requests go (`Asking`'s: one set here is the one every request goes to)."""
        return self.asking.publisher

    @publisher.setter
    def publisher(self, publisher: Publisher | None) -> None:
        self.asking.publisher = publisher

    async def park(self, rb: Runbook, step: Step, incident: Incident, event: Event, target: str,
                   values: dict[str, Any], digest: str, reasons: list[str], *, waived: bool = False,
                   alone: bool = False) -> None:
        """Park a step until a human decides (or its timeout): record the request, then publish it. `waived`: its
        runbook's own approval was given already (`Parked.waived`); `alone`: nothing runs after it (`Parked.alone`)."""
        parked = Parked(incident=incident.id, step=step.id, runbook=rb.ref, actuator=step.actuator, target=target,
                        params=values, digest=digest, reasons=reasons, approvers=list(step.approval.approvers),
                        deadline=self.clock() + step.approval.timeout, on_timeout=step.approval.on_timeout.value,
                        event=event.model_dump(mode="json", exclude={"raw"}), trace=event_trace(), waived=waived,
                        request_id=new_request_id(), alone=alone)
        self.state.park(parked)
        self.recorder.append(EntryKind.APPROVAL_REQUESTED, parked.body(), incident.id)
        await self.recorder.flush()
        sent = await self.asking.publish(parked)
        log.info("approval_requested", step=step.id, reasons=reasons, published=sent)

    async def ask_again(self) -> int:
        """Publish the requests Kafka did not take, and those of steps recovered parked (`Asking.ask_again`)."""
        return await self.asking.ask_again()

    async def reject(self, reason: str, key_id: str | None, d: ApprovalDecision | None, *, refusal: Refusal,
                     signed: str | None = None) -> None:
        """Record a refused decision as `approval.rejected` (the key id its sender chose, cut short), within the
        bounds of `refusals` (`refusal`: its class; `signed`: its decision id when a key of the ring signed it);
        durable with the next flush (the approvals loop's, before its offsets are committed)."""
        body = {"reason": reason, "key_id": bounded(key_id), **({"step": d.step, "by": d.by} if d else {})}
        if self.refusals.record(EntryKind.APPROVAL_REJECTED, body, d.incident if d else None, refusal=refusal,
                                key_id=key_id, signed=signed):
            log.warning("approval_rejected", reason=reason)

    async def decide(self, value: bytes, key_id: str | None, signature: str | None) -> bool:
        """Check a signed decision and release its step; a refusal is recorded as approval.rejected. A verified approval
        of a step whose runbook is no longer loaded at its version is refused, and the step lapses at once (`_lapsed`):
        the containment the human wanted cannot happen, so on-call hears of it now, not at the step's timeout. A denial
        of such a step needs no runbook: it is applied as any denial (recorded, the wait ended, nobody paged)."""
        await self.resolve_granted()
        now = datetime.fromtimestamp(self.clock(), UTC)
        unloaded: Parked | None = None
        try:
            decision, parked = accept_decision(value, key_id, signature, self.keys, self.state.parked, now,
                                               self.state.used)
            if self._runbook(parked) is None and decision.decision == "approve":  # a denial runs nothing: applied
                unloaded = parked
                raise ApprovalRefused(f"runbook {parked.runbook} is no longer loaded", decision)
        except ApprovalRefused as exc:
            verified = self.keys.check(key_id, signature, value) is None  # a key of the ring signed it: evidence
            await self.reject(exc.reason, key_id, exc.decision, refusal=exc.refusal,
                              signed=decision_id(value) if verified else None)
            if unloaded is not None:
                with stamped(unloaded.trace):
                    await self._taken_up(unloaded, self._lapsed(unloaded, exc.reason))
            return False
        # what the decision causes runs in its trace (the alert's when it came without one) and links the alert's
        with stamped(current_stamp("trace_id") or parked.trace, parked.trace):
            self.recorder.append(EntryKind.APPROVAL_DECIDED, {
                "step": decision.step, "decision": decision.decision, "by": decision.by, "reason": decision.reason,
                "digest": decision.digest, "key_id": key_id, "decision_id": (used := decision_id(value)),
                "settles": True,
                **({"request_id": decision.request_id} if decision.request_id else {})}, decision.incident)
            self.state.use(decision.incident, used)
            log.info("approval_decided", step=decision.step, decision=decision.decision, by=decision.by)
            await self.release(parked, approve=decision.decision == "approve", why=f"denied by {decision.by}")
        return True

    def due(self) -> bool:
        """Whether `expire` has anything to do now: a released step (or the steps after a decided one) a crash cut
        short, or a step past its deadline."""
        return self.runs_due() or bool(self._past_deadline())

    def _past_deadline(self) -> list[Parked]:
        """The parked steps past their deadline, but for one whose expiry a bug stopped in this process."""
        now, dropped = self.clock(), self._dropped
        return [p for p in self.state.parked_steps() if p.deadline <= now and parking(p) not in dropped]

    async def expire(self) -> int:
        """Apply on_timeout to every parked step past its deadline; returns how many. A bug in one is logged and that
        step left alone in this process (`_taken_up`), so it neither stops the others nor the service."""
        await self.resolve_granted()
        now, due = self.clock(), self._past_deadline()
        for p in due:
            with stamped(p.trace):  # a timeout is the alert's doing: its entries carry the alert's trace
                await self._taken_up(p, self._expire(p, now))
        return len(due)

    async def _lapsed(self, p: Parked, why: str) -> None:
        """A step no decision can release now (its runbook is no longer loaded) lapses before its deadline: denied and
        escalated as its timeout would deny it (`code: ApprovalTimeout`)."""
        self.recorder.append(EntryKind.APPROVAL_EXPIRED, {"step": p.step, "on_timeout": p.on_timeout, "approve": False,
                                                          "escalated": p.escalated, "settles": True, "reason": why},
                             p.incident)
        log.warning("approval_expired", step=p.step, on_timeout=p.on_timeout)
        await self.release(p, approve=False, why=why, timed_out=True)

    async def _expire(self, p: Parked, now: float) -> None:
        """One parked step past its deadline: escalate it once, or expire it with its `on_timeout`; a step whose runbook
        is no longer loaded at its version is not asked again (every decision on it is refused): it expires."""
        body = {"step": p.step, "on_timeout": p.on_timeout, "escalated": p.escalated}
        rb = self._runbook(p)
        if p.on_timeout == OnTimeout.ESCALATE and not p.escalated and rb is not None:
            at = step_index(rb, p.step)  # the runbook's step, or an escalation's `on_failure` step
            step = rb.steps[at] if at is not None else escalation_step(rb, p.step)
            timeout = step.approval.timeout if step is not None else 3600.0
            self.state.escalate(p.incident, p.step, now + timeout)
            self.recorder.append(EntryKind.APPROVAL_ESCALATED, {**body, "deadline": p.deadline}, p.incident)
            await self.recorder.flush()
            await self.asking.publish(p)
            log.warning("approval_escalated", step=p.step)
            return
        # only a human may waive a kill switch, quota or max-targets trip: on_timeout approve never does; a quota that
        # could not be counted yet is no trip to waive, and the released step's guards are checked when it runs
        waivable = all(r == RUNBOOK_APPROVAL or r.startswith(f"{UNCOUNTED}:") for r in p.reasons)
        approve = p.on_timeout == OnTimeout.APPROVE and waivable
        self.recorder.append(EntryKind.APPROVAL_EXPIRED, {**body, "approve": approve, "settles": True}, p.incident)
        log.warning("approval_expired", step=p.step, on_timeout=p.on_timeout)
        await self.release(replace(p, unattended=True) if approve else p, approve=approve, why="approval timed out",
                           timed_out=True)

    async def release(self, parked: Parked, *, approve: bool, why: str, timed_out: bool = False) -> None:
        """Unpark: run the step and the rest of the plan, or record it denied and honour on_failure. A runbook step
        denied by its timeout (nobody decided) is escalated first, as a failure is; so is one whose runbook was
        replaced or removed while it waited (`_orphaned`)."""
        self.state.unpark(parked.incident, parked.step)
        rb = self._runbook(parked)
        if approve and rb is not None:
            self.state.grant(parked)
        else:
            self.state.deny(parked)
        incident = self.state.incidents.by_id[parked.incident]
        if rb is None and (approve or timed_out):  # a human's denial keeps its own words
            approve, why = False, f"runbook {parked.runbook} is no longer loaded"
        key = idempotency_key(incident.id, parked.runbook, parked.step, parked.target)
        event = Event.model_validate(parked.event)
        index = step_index(rb, parked.step) if rb else None
        if approve and rb is not None:
            if index is None:  # an `on_failure` step: it runs alone, then the steps after a failed `continue` one
                await self.escalate(rb, incident, event, parked, "released")
            else:
                await self.resume(rb, incident, event, index, parked)
        else:
            lapsed = {"code": TIMED_OUT} if timed_out else {}
            result = StepResult(step=parked.step, actuator=parked.actuator, target=parked.target, key=key,
                                status=StepStatus.DENIED, error=why, permanent=True, **lapsed)
            self.recorder.append(EntryKind.STEP_RESULT, result.body(), incident.id)
            self.state.finish(result, incident.id)
            after = after_decided(rb, parked.step, ok=False) if rb and not parked.alone else None
            if rb is not None and lapsed and index is not None:  # its escalation, then the steps after it that go on
                await self.escalate(rb, incident, event, parked, "expired")
            elif rb is not None and after is not None:  # the steps after a denied step (or escalation) that continue
                await self.resume(rb, incident, event, after, None)
            elif rb is None and timed_out:  # its runbook was replaced or removed while nobody decided it
                await self._orphaned(parked, incident, event)
        self._settled(parked)  # the run was not cut short (skipped, re-parked, done)
        await self.recorder.flush()
