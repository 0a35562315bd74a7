"""Run a matched runbook for one event: incident → plan → guards → approval → intent → apply → result."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import structlog
from pydantic import ValidationError

from responder.actuators.base import ActuationContext, AwsCaller
from responder.actuators.registry import Registry
from responder.actuators.retry import settled_by_verify, with_retries
from responder.auth import KeyRing
from responder.engine import decisions
from responder.engine.approvals import Parked, Publisher, publish_request
from responder.engine.guards import Guards, Trip
from responder.engine.incidents import Incident, IncidentBook
from responder.engine.planner import build_plan
from responder.engine.templating import TemplateError, render
from responder.errors import ActuationError, PermanentActuationError, TransientActuationError
from responder.models.approval import REQUESTS_TOPIC
from responder.models.event import Event
from responder.models.plan import Plan, idempotency_key
from responder.models.runbook import Mode, OnFailure, Runbook, Step
from responder.models.timeline import EntryKind
from responder.rules.conditions import describe, first_failure
from responder.rules.matcher import Match
from responder.timeline.recorder import Recorder

log = structlog.get_logger(__name__)


class Outcome(StrEnum):
    """How one step ended for now."""

    OK = "ok"
    FAILED = "failed"
    PARKED = "parked"


class _LazyPlan:
    """The plan of one run, built only when something needs it (a digest, a max-targets guard)."""

    def __init__(self, build: Callable[[], Plan]) -> None:
        self._build = build
        self._plan: Plan | None = None

    def get(self) -> Plan:
        """Build once, then reuse."""
        if self._plan is None:
            self._plan = self._build()
        return self._plan


MAX_CLOCK_SKEW = 300.0  # seconds an event's own time may run ahead of ours
FINAL = frozenset({"ok", "denied"})  # step results that are never re-run for the same idempotency key


class Engine:
    """Executes matches; remembers which step keys have results so nothing acts twice."""

    def __init__(self, recorder: Recorder, registry: Registry, aws: AwsCaller, *, dry_run: bool = False,
                 guards: Guards | None = None, publisher: Publisher | None = None,
                 approval_keys: KeyRing | None = None, requests_topic: str = REQUESTS_TOPIC,
                 clock: Callable[[], float] = time.time, extras: Mapping[str, Any] | None = None) -> None:
        self.recorder = recorder
        self.extras = dict(extras or {})
        self.registry = registry
        self.aws = aws
        self.dry_run = dry_run
        self.clock = clock
        self.guards = guards or Guards(clock=clock)
        self.publisher = publisher
        self.approval_keys = approval_keys or KeyRing()
        self.requests_topic = requests_topic
        self.incidents = IncidentBook()
        self.runbooks: dict[str, Runbook] = {}
        self.done: dict[str, dict[str, Any]] = {}
        self.inflight: dict[str, dict[str, Any]] = {}
        self.parked: dict[tuple[str, str], Parked] = {}
        self.actions = 0
        self._locks: dict[str, asyncio.Lock] = {}
        self._group_locks: dict[tuple[str, str], tuple[asyncio.Lock, list[int]]] = {}

    def use_runbooks(self, runbooks: Iterable[Runbook]) -> None:
        """The runbooks parked approvals resume with (looked up by id, checked by version)."""
        self.runbooks = {rb.id: rb for rb in runbooks}

    def recover(self) -> int:
        """Rebuild incidents, completed, in-flight and parked steps from the durable timeline; returns entries read."""
        from responder.engine.recovery import replay

        self.incidents = IncidentBook()  # a replay rebuilds everything: it may run again on partition assignment
        self.done.clear()
        self.inflight.clear()
        self.parked.clear()
        self.guards.forget_history()
        return replay(self, self.recorder.entries())

    async def handle(self, match: Match) -> Incident:
        """Open, join or (in cooldown) suppress the incident, then run the runbook's steps in order."""
        rb, event = match.runbook, match.event
        group_key = str(render(rb.group_by, {"event": event.view()}))
        lock, users = self._group_locks.setdefault((rb.id, group_key), (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                return await self._handle_locked(rb, event, group_key)
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._group_locks[(rb.id, group_key)]

    async def _handle_locked(self, rb: Runbook, event: Event, group_key: str) -> Incident:
        """Handle one match with its incident serialised against concurrent events of the same group."""
        latest = datetime.fromtimestamp(self.clock(), UTC) + timedelta(seconds=MAX_CLOCK_SKEW)
        if event.time > latest:  # a future-dated event must not hold an incident open for ever
            event = event.model_copy(update={"time": latest})
        incident = self.incidents.find(rb.id, group_key, event.time, rb.window)
        base = {"event_id": event.id, "runbook": rb.ref, "group_key": group_key, "event_time": event.time.isoformat()}
        if incident is None:
            last = self.incidents.latest(rb.id, group_key)
            if last is not None and rb.cooldown and event.time - last.opened_at < timedelta(seconds=rb.cooldown):
                self.recorder.append(EntryKind.INCIDENT_SUPPRESSED, {**base, "cooldown": rb.cooldown,
                                                                     "previous": last.id}, last.id)
                return last
            incident = self.incidents.open(rb.id, group_key, event.id, event.time)
            self.recorder.append(EntryKind.INCIDENT_OPENED, base, incident.id)
        else:
            repeat = incident.seen(event.id)
            if not repeat:
                incident.add(event.time)
            incident.last_seen = max(incident.last_seen, event.time)
            self.recorder.append(EntryKind.INCIDENT_JOINED, {**base, "repeat": repeat}, incident.id)
        incident.seen(event.id)
        await self.run_from(rb, incident, event)
        return incident

    def _scope(self, incident: Incident, event: Event, rb: Runbook) -> dict[str, Any]:
        recent = incident.recent(event.time, rb.count_window or rb.window)
        return {"event": event.view(), "steps": incident.step_outputs,
                "incident": {"id": incident.id, "group_key": incident.group_key, "runbook": incident.runbook,
                             "events": incident.events, "recent_events": recent}}

    async def run_from(self, rb: Runbook, incident: Incident, event: Event, *, start: int = 0,
                       approved: Parked | None = None) -> None:
        """Run the runbook's steps from `start`; `approved` is the parked step a human has just released."""
        lock = self._locks.setdefault(incident.id, asyncio.Lock())
        async with lock:
            with structlog.contextvars.bound_contextvars(incident=incident.id, runbook=rb.id, event_id=event.id):
                scope = self._scope(incident, event, rb)
                dry = self.dry_run or rb.mode is Mode.DRY_RUN
                plan = _LazyPlan(lambda: build_plan(rb, incident.id, event.id, scope, self.registry, dry_run=dry))
                plan_trips = self.guards.check_plan(rb, [s.target for s in plan.get().steps]) \
                    if self.guards.limits_targets(rb) else []
                for step in rb.steps[start:]:
                    grant = approved if approved is not None and approved.step == step.id else None
                    if grant is None and any(p.incident == incident.id and p.runbook == rb.ref
                                             for p in self.parked.values()):
                        return  # an earlier step waits for a human; later steps wait with it
                    outcome = await self._run_step(rb, step, incident, event, scope, plan, plan_trips, grant)
                    if outcome is Outcome.PARKED:
                        return
                    if outcome is Outcome.FAILED and step.on_failure is OnFailure.STOP:
                        return

    async def _run_step(self, rb: Runbook, step: Step, incident: Incident, event: Event, scope: dict[str, Any],
                        plan: _LazyPlan, plan_trips: list[Trip], grant: Parked | None) -> Outcome:
        rec = self.recorder
        failed_when = first_failure(step.when, scope)
        if failed_when is not None:
            rec.append(EntryKind.STEP_SKIPPED, {"step": step.id, "reason": "when",
                                                "condition": describe(failed_when)}, incident.id)
            return Outcome.OK
        actuator = self.registry.get(step.actuator)
        try:
            params = actuator.params.model_validate(render(step.with_, scope))
        except (TemplateError, ValidationError) as exc:
            rec.append(EntryKind.STEP_RESULT, {"step": step.id, "actuator": step.actuator, "status": "failed",
                                               "error": f"invalid parameters: {exc}", "permanent": True}, incident.id)
            log.warning("step_params_invalid", step=step.id, error=str(exc))
            return Outcome.FAILED
        target = actuator.target(params)
        key = idempotency_key(incident.id, rb.ref, step.id, target)
        values = params.model_dump(mode="json")
        head: dict[str, Any] = {"step": step.id, "actuator": step.actuator, "target": target, "key": key}
        status = self.done.get(key, {}).get("status")
        if status in FINAL:
            # success and a human denial are final; a failure or refusal is not, so a forged event
            # cannot block containment when the real alert for the same target arrives
            rec.append(EntryKind.STEP_SKIPPED, {**head, "reason": "already_done"}, incident.id)
            incident.step_outputs[step.id] = {"result": self.done[key].get("outputs", {})}
            return Outcome.OK if status == "ok" else Outcome.FAILED
        trips = [*plan_trips, *self.guards.check_step(rb, step.actuator, target, values, event)]
        reasons = [f"{t.guard}: {t.detail}" for t in trips]
        if step.approval.required:
            reasons.append("approval required by the runbook")
        elif actuator.destructive:  # never waived, even if a runbook bypassed the loader
            reasons.append(f"{step.actuator} is destructive")
        ctx = ActuationContext(aws=self.aws, incident=incident.id, key=key, extras=self.extras)
        if self.dry_run or rb.mode is Mode.DRY_RUN:
            preview = await actuator.plan(params, ctx)
            rec.append(EntryKind.STEP_PLANNED, {**head, "params": values, "summary": preview.summary,
                                                "dry_run": True, "digest": plan.get().digest,
                                                "would_require_approval": reasons,
                                                "would_refuse": any(t.hard for t in trips)}, incident.id)
            return Outcome.OK
        if key in self.inflight and self.inflight[key].get("params") == values:
            # an intent is only written once guards and approvals passed: resolve it, never ask again
            return await self._execute(rb, step, incident, actuator, params, ctx, head, values)
        if grant is not None and (grant.params != values or grant.target != target):
            self.recorder.append(EntryKind.APPROVAL_REJECTED, {**head, "reason": "the step's parameters changed "
                                                               "since the approval was requested"}, incident.id)
            grant = None
        approved = grant is not None
        hard = [t for t in trips if t.hard]
        if hard or (reasons and not approved):
            for trip in trips:
                rec.append(EntryKind.GUARD_TRIPPED, {**head, **trip.body()}, incident.id)
                log.warning("guard_tripped", step=step.id, guard=trip.guard, detail=trip.detail)
        if hard:
            body = {**head, "status": "refused", "error": "; ".join(t.detail for t in hard), "permanent": True}
            rec.append(EntryKind.STEP_RESULT, body, incident.id)
            self.finish(key, body)
            return Outcome.FAILED
        if reasons and not approved:
            await self._park(rb, step, incident, event, target, values, plan.get().digest, reasons)
            return Outcome.PARKED
        return await self._execute(rb, step, incident, actuator, params, ctx, head, values)

    async def _park(self, rb: Runbook, step: Step, incident: Incident, event: Event, target: str,
                    values: dict[str, Any], digest: str, reasons: list[str]) -> None:
        parked = Parked(incident=incident.id, step=step.id, runbook=rb.ref, actuator=step.actuator, target=target,
                        params=values, digest=digest, reasons=reasons, approvers=list(step.approval.approvers),
                        deadline=self.clock() + step.approval.timeout, on_timeout=step.approval.on_timeout.value,
                        event=event.model_dump(mode="json", exclude={"raw"}))
        self.parked[(incident.id, step.id)] = parked
        self.recorder.append(EntryKind.APPROVAL_REQUESTED, parked.body(), incident.id)
        await self.recorder.flush()
        sent = await publish_request(self.publisher, parked, self.requests_topic)
        log.info("approval_requested", step=step.id, reasons=reasons, published=sent)

    async def _execute(self, rb: Runbook, step: Step, incident: Incident, actuator: Any, params: Any,
                       ctx: ActuationContext, head: dict[str, Any], values: dict[str, Any]) -> Outcome:
        rec, key = self.recorder, str(head["key"])
        if key in self.inflight and await self._verified(actuator, params, ctx):
            body: dict[str, Any] = {**head, "status": "ok", "changed": None, "recovered": True}
            rec.append(EntryKind.STEP_RESULT, body, incident.id)
            self.finish(key, body)
            return Outcome.OK
        now = self.clock()
        intent = {**head, "params": values, "destructive": actuator.destructive, "runbook": rb.id, "clock": now}
        rec.append(EntryKind.STEP_INTENT, intent, incident.id)
        self.inflight[key] = intent
        self.guards.record(rb.id, step.actuator, now)
        await rec.flush()
        started = time.perf_counter()
        self.actions += 1
        try:
            result = await asyncio.wait_for(
                with_retries(lambda: actuator.apply(params, ctx), attempts=step.retries + 1, deadline=step.timeout,
                             settled=settled_by_verify(actuator, params, ctx)),  # a lost reply: verify decides
                timeout=step.timeout,
            )
            verified = await self._verified(actuator, params, ctx)
        except Exception as exc:
            if not isinstance(exc, ActuationError | TimeoutError):
                log.exception("actuator_raised", step=step.id)
            fallback = "Timeout" if isinstance(exc, TimeoutError) else exc.__class__.__name__
            body = {**head, "status": "failed", "error": str(exc) or "timed out",
                    "code": getattr(exc, "code", fallback),
                    "permanent": not isinstance(exc, TransientActuationError | TimeoutError),
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3)}
            rec.append(EntryKind.STEP_RESULT, body, incident.id)
            self.finish(key, body)
            log.warning("step_failed", step=step.id, error=str(exc))
            return Outcome.FAILED
        body = {**head, "status": "ok", "changed": result.changed, "verified": verified,
                "prior": result.prior, "after": result.after, "outputs": result.outputs,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3)}
        rec.append(EntryKind.STEP_RESULT, body, incident.id)
        self.finish(key, body)
        incident.step_outputs[step.id] = {"result": result.outputs}
        log.info("step_succeeded", step=step.id, changed=result.changed, verified=verified)
        return Outcome.OK

    async def decide(self, value: bytes, key_id: str | None, signature: str | None) -> bool:
        """Apply a signed decision from the approvals topic or CLI; False (and recorded) when refused."""
        return await decisions.decide(self, value, key_id, signature)

    async def expire(self) -> int:
        """Apply `on_timeout` to parked steps whose deadline has passed; returns how many were handled."""
        return await decisions.expire(self)

    async def _verified(self, actuator: Any, params: Any, ctx: ActuationContext) -> bool:
        try:
            return bool(await actuator.verify(params, ctx))
        except (TransientActuationError, PermanentActuationError, TimeoutError):
            return False

    def finish(self, key: str, body: dict[str, Any]) -> None:
        """Mark a step key as having its result."""
        self.inflight.pop(key, None)
        self.done[key] = body
