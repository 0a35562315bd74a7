"""Run a matched runbook for one event: incident, plan each step, intent → apply → result."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog
from pydantic import ValidationError

from responder.actuators.base import ActuationContext, AwsCaller
from responder.actuators.registry import Registry
from responder.actuators.retry import with_retries
from responder.engine.incidents import Incident, IncidentBook
from responder.engine.templating import TemplateError, render
from responder.errors import ActuationError, PermanentActuationError, TransientActuationError
from responder.models.plan import idempotency_key
from responder.models.runbook import Mode, OnFailure, Runbook, Step
from responder.models.timeline import EntryKind
from responder.rules.conditions import first_failure
from responder.rules.matcher import Match
from responder.timeline.recorder import Recorder

log = structlog.get_logger(__name__)


class Engine:
    """Executes matches; remembers which step keys have results so nothing acts twice."""

    def __init__(self, recorder: Recorder, registry: Registry, aws: AwsCaller, *, dry_run: bool = False) -> None:
        self.recorder = recorder
        self.registry = registry
        self.aws = aws
        self.dry_run = dry_run
        self.incidents = IncidentBook()
        self.done: dict[str, dict[str, Any]] = {}
        self.inflight: dict[str, dict[str, Any]] = {}
        self.actions = 0
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, list[int]]] = {}

    def recover(self) -> int:
        """Rebuild incidents, completed and in-flight steps from the durable timeline; returns entries read."""
        from responder.engine.recovery import replay

        return replay(self, self.recorder.entries())

    async def handle(self, match: Match) -> Incident:
        """Open or join the incident, then run the runbook's steps in order."""
        rb, event = match.runbook, match.event
        scope: dict[str, Any] = {"event": event.view()}
        group_key = str(render(rb.group_by, scope))
        lock, users = self._locks.setdefault((rb.id, group_key), (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                return await self._handle_locked(match, scope, group_key)
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._locks[(rb.id, group_key)]

    async def _handle_locked(self, match: Match, scope: dict[str, Any], group_key: str) -> Incident:
        """Handle one match with its incident serialised against concurrent events of the same group."""
        rb, event = match.runbook, match.event
        incident = self.incidents.find(rb.id, group_key, event.time, rb.window)
        base = {"event_id": event.id, "runbook": rb.ref, "group_key": group_key, "event_time": event.time.isoformat()}
        if incident is None:
            incident = self.incidents.open(rb.id, group_key, event.id, event.time)
            self.recorder.append(EntryKind.INCIDENT_OPENED, base, incident.id)
        else:
            incident.events += 1
            incident.last_seen = max(incident.last_seen, event.time)
            self.recorder.append(EntryKind.INCIDENT_JOINED, base, incident.id)
        scope["incident"] = {"id": incident.id, "group_key": group_key, "runbook": rb.id, "events": incident.events}
        scope["steps"] = incident.step_outputs
        with structlog.contextvars.bound_contextvars(incident=incident.id, runbook=rb.id, event_id=event.id):
            for step in rb.steps:
                ok = await self._run_step(rb, step, incident, scope)
                if not ok and step.on_failure is OnFailure.STOP:
                    break
        return incident

    async def _run_step(self, rb: Runbook, step: Step, incident: Incident, scope: dict[str, Any]) -> bool:
        """Run one step; False when it failed."""
        rec = self.recorder
        failed_when = first_failure(step.when, scope)
        if failed_when is not None:
            rec.append(EntryKind.STEP_SKIPPED, {"step": step.id, "reason": "when", "condition": str(failed_when)},
                       incident.id)
            return True
        actuator = self.registry.get(step.actuator)
        try:
            params = actuator.params.model_validate(render(step.with_, scope))
        except (TemplateError, ValidationError) as exc:
            rec.append(EntryKind.STEP_RESULT, {"step": step.id, "actuator": step.actuator, "status": "failed",
                                               "error": f"invalid parameters: {exc}", "permanent": True}, incident.id)
            log.warning("step_params_invalid", step=step.id, error=str(exc))
            return False
        target = actuator.target(params)
        key = idempotency_key(incident.id, rb.ref, step.id, target)
        head: dict[str, Any] = {"step": step.id, "actuator": step.actuator, "target": target, "key": key}
        if key in self.done:
            rec.append(EntryKind.STEP_SKIPPED, {**head, "reason": "already_done"}, incident.id)
            incident.step_outputs[step.id] = {"result": self.done[key].get("outputs", {})}
            return self.done[key].get("status") == "ok"
        ctx = ActuationContext(aws=self.aws, incident=incident.id, key=key)
        if self.dry_run or rb.mode is Mode.DRY_RUN:
            preview = await actuator.plan(params, ctx)
            rec.append(EntryKind.STEP_PLANNED, {**head, "params": params.model_dump(mode="json"),
                                                "summary": preview.summary, "dry_run": True}, incident.id)
            return True
        if key in self.inflight and await self._verified(actuator, params, ctx):
            body: dict[str, Any] = {**head, "status": "ok", "changed": None, "recovered": True}
            rec.append(EntryKind.STEP_RESULT, body, incident.id)
            self._finish(key, body)
            return True
        intent = {**head, "params": params.model_dump(mode="json"), "destructive": actuator.destructive}
        rec.append(EntryKind.STEP_INTENT, intent, incident.id)
        self.inflight[key] = intent
        await rec.flush()
        started = time.perf_counter()
        self.actions += 1
        try:
            result = await asyncio.wait_for(
                with_retries(lambda: actuator.apply(params, ctx), attempts=step.retries + 1, deadline=step.timeout),
                timeout=step.timeout,
            )
            verified = await self._verified(actuator, params, ctx)
        except (ActuationError, TimeoutError) as exc:
            body = {**head, "status": "failed", "error": str(exc) or "timed out",
                    "code": getattr(exc, "code", "Timeout"),
                    "permanent": isinstance(exc, PermanentActuationError),
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3)}
            rec.append(EntryKind.STEP_RESULT, body, incident.id)
            self._finish(key, body)
            log.warning("step_failed", step=step.id, error=str(exc))
            return False
        body = {**head, "status": "ok", "changed": result.changed, "verified": verified,
                "prior": result.prior, "after": result.after, "outputs": result.outputs,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3)}
        rec.append(EntryKind.STEP_RESULT, body, incident.id)
        self._finish(key, body)
        incident.step_outputs[step.id] = {"result": result.outputs}
        log.info("step_succeeded", step=step.id, changed=result.changed, verified=verified)
        return True

    async def _verified(self, actuator: Any, params: Any, ctx: ActuationContext) -> bool:
        try:
            return bool(await actuator.verify(params, ctx))
        except (TransientActuationError, PermanentActuationError, TimeoutError):
            return False

    def _finish(self, key: str, body: dict[str, Any]) -> None:
        self.inflight.pop(key, None)
        self.done[key] = body
