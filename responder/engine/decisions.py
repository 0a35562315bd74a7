"""Releasing parked steps: signed decisions, and `on_timeout` when nobody decides in time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog

from responder.engine.approvals import Parked, accept_decision, publish_request
from responder.errors import ApprovalRefused
from responder.models.event import Event
from responder.models.plan import idempotency_key
from responder.models.runbook import OnFailure, OnTimeout, Runbook
from responder.models.timeline import EntryKind

if TYPE_CHECKING:
    from responder.engine.executor import Engine

log = structlog.get_logger(__name__)


def _runbook(engine: Engine, parked: Parked) -> Runbook | None:
    """The loaded runbook of a parked step, only if it is still the same version."""
    rb = engine.runbooks.get(parked.runbook.split("@", 1)[0])
    return rb if rb is not None and rb.ref == parked.runbook else None


async def decide(engine: Engine, value: bytes, key_id: str | None, signature: str | None) -> bool:
    """Check a signed decision and release its step; a refusal is recorded as approval.rejected."""
    now = datetime.fromtimestamp(engine.clock(), UTC)
    try:
        decision, parked = accept_decision(value, key_id, signature, engine.approval_keys, engine.parked, now)
        if _runbook(engine, parked) is None:
            raise ApprovalRefused(f"runbook {parked.runbook} is no longer loaded", decision)
    except ApprovalRefused as exc:
        d = exc.decision
        body = {"reason": exc.reason, "key_id": key_id, **({"step": d.step, "by": d.by} if d else {})}
        engine.recorder.append(EntryKind.APPROVAL_REJECTED, body, d.incident if d else None)
        await engine.recorder.flush()
        log.warning("approval_rejected", reason=exc.reason)
        return False
    engine.recorder.append(EntryKind.APPROVAL_DECIDED, {
        "step": decision.step, "decision": decision.decision, "by": decision.by, "reason": decision.reason,
        "digest": decision.digest, "key_id": key_id}, decision.incident)
    log.info("approval_decided", step=decision.step, decision=decision.decision, by=decision.by)
    await release(engine, parked, approve=decision.decision == "approve", why=f"denied by {decision.by}")
    return True


async def expire(engine: Engine) -> int:
    """Apply on_timeout to every parked step past its deadline; returns how many."""
    now = engine.clock()
    due = [p for p in engine.parked.values() if p.deadline <= now]
    for p in due:
        body = {"step": p.step, "on_timeout": p.on_timeout, "escalated": p.escalated}
        if p.on_timeout == OnTimeout.ESCALATE and not p.escalated:
            rb = _runbook(engine, p)
            timeout = next((s.approval.timeout for s in rb.steps if s.id == p.step), 3600.0) if rb else 3600.0
            p.escalated, p.deadline = True, now + timeout
            engine.recorder.append(EntryKind.APPROVAL_ESCALATED, {**body, "deadline": p.deadline}, p.incident)
            await engine.recorder.flush()
            await publish_request(engine.publisher, p, engine.requests_topic)
            log.warning("approval_escalated", step=p.step)
            continue
        engine.recorder.append(EntryKind.APPROVAL_EXPIRED, body, p.incident)
        log.warning("approval_expired", step=p.step, on_timeout=p.on_timeout)
        waivable = all(r == "approval required by the runbook" for r in p.reasons)
        # only a human may waive a kill switch, quota or max-targets trip: on_timeout approve never does
        await release(engine, p, approve=p.on_timeout == OnTimeout.APPROVE and waivable, why="approval timed out")
    return len(due)


async def release(engine: Engine, parked: Parked, *, approve: bool, why: str) -> None:
    """Unpark: run the step and the rest of the plan, or record it denied and honour on_failure."""
    engine.parked.pop((parked.incident, parked.step), None)
    rb = _runbook(engine, parked)
    incident = engine.incidents.by_id[parked.incident]
    if rb is None:
        approve, why = False, f"runbook {parked.runbook} is no longer loaded"
    key = idempotency_key(incident.id, parked.runbook, parked.step, parked.target)
    event = Event.model_validate(parked.event)
    index = next((i for i, s in enumerate(rb.steps) if s.id == parked.step), 0) if rb else 0
    if approve and rb is not None:
        await engine.run_from(rb, incident, event, start=index, approved=parked)
    else:
        body = {"step": parked.step, "actuator": parked.actuator, "target": parked.target, "key": key,
                "status": "denied", "error": why, "permanent": True}
        engine.recorder.append(EntryKind.STEP_RESULT, body, incident.id)
        engine.finish(key, body)
        if rb is not None and rb.steps[index].on_failure is OnFailure.CONTINUE:
            await engine.run_from(rb, incident, event, start=index + 1)
    await engine.recorder.flush()
