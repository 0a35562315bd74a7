"""Undo an incident: run reverse actuators, newest step first, from the prior state the timeline recorded.

Every `step.result` with status ok and `changed: true` names its actuator; its `step.intent` (same key)
holds the validated params. The actuator's `reverse_params(params, result)` turns the recorded prior state
into the reverse actuator's params. Each reversal is recorded as `undo.intent` before the call and
`undo.result` after it (or `undo.skipped` with the reason), all carrying `undoes: <step key>`; a step
with an ok `undo.result` is not undone twice. A destructive reverse (stopping an instance that a step
started) is skipped unless explicitly allowed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import structlog
from pydantic import ValidationError

from responder.actuators.base import ActuationContext, ActuationResult, AwsCaller
from responder.actuators.registry import Registry
from responder.actuators.retry import settled_by_verify, with_retries
from responder.errors import ActuationError, ConfigError, PermanentActuationError
from responder.models.plan import idempotency_key
from responder.models.timeline import EntryKind, TimelineEntry
from responder.timeline.recorder import Recorder

log = structlog.get_logger(__name__)

UNDO_INTENT = "undo.intent"
UNDO_RESULT = "undo.result"
UNDO_SKIPPED = "undo.skipped"


def undoable(entries: Iterable[TimelineEntry], incident: str, step: str | None = None) -> list[dict[str, Any]]:
    """The incident's ok step results not yet undone, newest first, each with its intent's params."""
    intents: dict[str, Mapping[str, Any]] = {}
    results: list[dict[str, Any]] = []
    undone: set[str] = set()
    for e in entries:
        if e.incident != incident:
            continue
        if e.kind == EntryKind.STEP_INTENT:
            intents[str(e.body["key"])] = e.body
        elif e.kind == EntryKind.STEP_RESULT and e.body.get("status") == "ok" and "key" in e.body:
            results.append(dict(e.body))
        elif e.kind == UNDO_RESULT and e.body.get("status") == "ok":
            undone.add(str(e.body["undoes"]))
    out = []
    for body in reversed(results):
        key = str(body["key"])
        if key in undone or (step is not None and body.get("step") != step):
            continue
        out.append({**body, "params": dict(intents.get(key, {}).get("params") or {})})
    return out


class Undoer:
    """Runs reversals for one incident and records each on the timeline."""

    def __init__(self, recorder: Recorder, registry: Registry, aws: AwsCaller, *,
                 extras: Mapping[str, Any] | None = None, attempts: int = 4, deadline: float = 60.0,
                 allow_destructive: bool = False) -> None:
        self.recorder = recorder
        self.allow_destructive = allow_destructive
        self.registry = registry
        self.aws = aws
        self.extras = dict(extras or {})
        self.attempts = attempts
        self.deadline = deadline

    async def undo(self, incident: str, step: str | None = None) -> list[dict[str, Any]]:
        """Undo the incident's steps (or one step) newest first; returns one outcome per step considered."""
        await self.recorder.flush()
        pending = undoable(self.recorder.entries(), incident, step)
        if step is not None and not pending:
            raise ConfigError(f"incident {incident} has no completed, not yet undone step {step!r}")
        outcomes = []
        for body in pending:
            outcomes.append(await self._undo_one(incident, body))
        await self.recorder.flush()
        return outcomes

    def _skip(self, incident: str, head: dict[str, Any], reason: str) -> dict[str, Any]:
        out = {**head, "status": "skipped", "reason": reason}
        self.recorder.append(UNDO_SKIPPED, out, incident)
        return out

    async def _undo_one(self, incident: str, body: dict[str, Any]) -> dict[str, Any]:
        actuator = self.registry.get(str(body["actuator"]))
        head = {"undoes": body["key"], "step": body["step"], "actuator": actuator.name, "target": body.get("target")}
        if body.get("changed") is not True:
            return self._skip(incident, head, "the step changed nothing (or was recovered without prior state)")
        if actuator.reverse is None:
            return self._skip(incident, head, f"irreversible: {actuator.irreversible}")
        try:
            params = actuator.params.model_validate(body["params"])
            result = ActuationResult(changed=True, target=str(body.get("target", "")), prior=body.get("prior") or {},
                                     after=body.get("after") or {}, outputs=body.get("outputs") or {})
            reverse_raw = actuator.reverse_params(params, result)
            if reverse_raw is None:
                return self._skip(incident, head, "nothing recorded to restore")
            reverse = self.registry.get(actuator.reverse)
            rparams = reverse.params.model_validate(reverse_raw)
        except ValidationError as exc:
            return self._skip(incident, head, f"recorded state does not validate: {exc.errors()[0]['msg']}")
        if reverse.destructive and not self.allow_destructive:
            return self._skip(incident, head, f"{reverse.name} is destructive: re-run with --allow-destructive")
        key = idempotency_key(incident, "undo", str(body["step"]), str(body["key"]))
        ctx = ActuationContext(aws=self.aws, incident=incident, key=key, extras=self.extras)
        intent = {**head, "reverse": reverse.name, "params": rparams.model_dump(mode="json"), "key": key}
        self.recorder.append(UNDO_INTENT, intent, incident)
        await self.recorder.flush()
        try:
            done = await with_retries(lambda: reverse.apply(rparams, ctx), attempts=self.attempts,
                                      deadline=self.deadline,
                                      settled=settled_by_verify(reverse, rparams, ctx))  # a lost reply: verify decides
            verified = bool(await reverse.verify(rparams, ctx))
        except (ActuationError, TimeoutError) as exc:
            out = {**head, "reverse": reverse.name, "status": "failed", "error": str(exc) or "timed out",
                   "code": getattr(exc, "code", "Timeout"), "permanent": isinstance(exc, PermanentActuationError)}
            self.recorder.append(UNDO_RESULT, out, incident)
            log.warning("undo_failed", step=body["step"], error=str(exc))
            return out
        out = {**head, "reverse": reverse.name, "status": "ok", "changed": done.changed, "verified": verified,
               "prior": done.prior, "after": done.after}
        self.recorder.append(UNDO_RESULT, out, incident)
        log.info("step_undone", step=body["step"], reverse=reverse.name, changed=done.changed)
        return out
