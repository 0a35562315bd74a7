"""Undo an incident: run reverse actuators, newest step first, from the prior state the timeline recorded.

Every `step.result` with status ok and `changed: true` (or a failed one with `changed: true`: a failure after a
partial change, whose prior and after states are what it changed, since 2026-12-07) names its actuator; its
`step.intent` (same key) holds the validated params. Several results of one key not yet undone (a failure part-way,
then a run that completed it) are undone as one, from the newest one's after-state back to the earliest one's prior
state (since 2026-12-07). The actuator's `reverse_params(params, result)` turns the
recorded prior state into the reverse actuator's params. Each reversal is recorded as `undo.intent` before the call
and `undo.result` after it (or `undo.skipped` with the reason), all carrying `undoes: <step key>`; a step
with an ok `undo.result` is not undone twice (a result of its key recorded after that undo is undoable again). A
destructive reverse (stopping an instance that a step started) is skipped unless explicitly allowed.

Undo is compare-and-set: it runs only while the target still holds the step's recorded after-state
(`observe()`, or `verify()` for actuators that cannot report their state), read within the step's deadline.
Otherwise (or when that read does not answer in time) the step is skipped with the difference, and `force`
(`responder undo --force`) undoes it anyway, recording the difference it overrode as `forced` on the undo's intent
and result.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import structlog
from pydantic import JsonValue, ValidationError

from responder.actuators.base import ActuationContext, ActuationResult, AwsCaller
from responder.actuators.registry import Registry
from responder.engine.readback import StepCall, observe, verified
from responder.engine.runner import run_step
from responder.engine.undone import UNDO_INTENT as UNDO_INTENT
from responder.engine.undone import UNDO_RESULT as UNDO_RESULT
from responder.engine.undone import UNDO_SKIPPED as UNDO_SKIPPED
from responder.errors import ConfigError
from responder.models.plan import idempotency_key
from responder.models.step import StepIntent, StepResult, StepStatus
from responder.models.timeline import EntryKind, TimelineEntry
from responder.timeline.recorder import Recorder

log = structlog.get_logger(__name__)

OPERATOR_KINDS = "operator."  # the entries of an operator request (responder/engine/operator.py)
NAMING_ONLY = frozenset({EntryKind.APPROVAL_REJECTED})  # a refused decision: anyone who can write the topic causes one


def holds(kind: str) -> bool:
    """Whether an entry of this kind shows its timeline holds the incident it is recorded under, not only names it:
    an operator request's own entries (`operator.*`, under whatever it named: a prefix, a typo, another replica's
    incident) and refused decisions do not."""
    return not kind.startswith(OPERATOR_KINDS) and kind not in NAMING_ONLY


def held(entries: Iterable[TimelineEntry], incident: str) -> bool:
    """Whether these entries show their timeline holds `incident` (`holds`)."""
    return any(e.incident == incident and holds(e.kind) for e in entries)


@dataclass(frozen=True)
class Undoable:
    """A step result that changed something (ok, or failed part-way) not yet undone, with its intent's params."""

    result: StepResult
    params: dict[str, JsonValue]


def undoable(entries: Iterable[TimelineEntry], incident: str, step: str | None = None) -> list[Undoable]:
    """The incident's step results that changed something (ok, or failed after a partial change) not yet undone,
    newest first, each with its intent's params."""
    return _scan(entries, incident, step)[0]


def _scan(entries: Iterable[TimelineEntry], incident: str, step: str | None) -> tuple[list[Undoable], bool]:
    """`undoable`, and whether the timeline holds the incident: an entry of it other than an operator request's
    own or a refused decision (`holds`)."""
    intents: dict[str, StepIntent] = {}
    pending: dict[str, StepResult] = {}  # by step key, the newest last: what each key changed and has not undone
    held = False
    for e in entries:
        if e.incident != incident:
            continue
        held = held or holds(e.kind)
        if e.kind == EntryKind.STEP_INTENT:
            intent = StepIntent.read(e.body)
            intents[str(intent.key)] = intent
        elif e.kind in (EntryKind.STEP_RESULT, UNDO_RESULT):
            result = StepResult.read(e.body)
            if result.ok and e.kind == UNDO_RESULT:
                pending.pop(str(result.undoes), None)
            elif e.kind == EntryKind.STEP_RESULT and result.key is not None and (result.ok or result.changed is True):
                earlier = pending.pop(str(result.key), None)
                pending[str(result.key)] = result if earlier is None else _merged(earlier, result)
    out = []
    for key, result in reversed(pending.items()):
        if step is not None and result.step != step:
            continue
        found = intents.get(key)
        out.append(Undoable(result, dict(found.params) if found is not None else {}))
    return out, held


def _merged(earlier: StepResult, later: StepResult) -> StepResult:
    """Two results of one step key, neither undone (a failure after a partial change, then a run that completed it):
    one reversal from the later one's after-state back to the earlier one's prior state, so a change either made
    stays reachable by undo until it is reversed."""
    if earlier.changed is not True:
        return later
    return later.model_copy(update={"changed": True, "prior": earlier.prior})


class Undoer:
    """Runs reversals for one incident and records each on the timeline."""

    def __init__(self, recorder: Recorder, registry: Registry, aws: AwsCaller, *,
                 context: ActuationContext | None = None, attempts: int = 4, deadline: float = 60.0,
                 allow_destructive: bool = False, force: bool = False, operator: str | None = None,
                 on_undone: Callable[[TimelineEntry], None] | None = None) -> None:
        """`operator` (who asked, for an operator request) is recorded on each undo intent; `on_undone` is given each
        `undo.result` entry as it is appended (the running service marks the step undone in its engine state then,
        before the entry is durable: a fleet's changelog slice written with it carries the mark)."""
        self.recorder = recorder
        self.on_undone = on_undone
        self.operator = operator
        self.force = force
        self.allow_destructive = allow_destructive
        self.registry = registry
        self.aws = aws
        self.context = replace(context, aws=aws) if context is not None else ActuationContext(aws=aws)
        self.attempts = attempts
        self.deadline = deadline

    async def undo(self, incident: str, step: str | None = None, *, held: bool = False) -> list[dict[str, Any]]:
        """Undo the incident's steps (or one step) newest first; returns one outcome per step considered. `held`:
        refuse (ConfigError) an incident the timeline does not hold, read in the same scan."""
        await self.recorder.flush()
        pending, known = _scan(self.recorder.entries(), incident, step)
        if held and not known:  # a prefix, a typo, or in a fleet another replica's incident: as offline undo says
            raise ConfigError(f"incident {incident!r} is not on this service's timeline: name it in full "
                              "(`responder timeline show`); in a fleet, the replica that ran its steps holds it")
        if step is not None and not pending:
            raise ConfigError(f"incident {incident} has no completed, not yet undone step {step!r}")
        outcomes = []
        seen = self._seen
        if self.on_undone is not None:
            self.recorder.observers.append(seen)
        try:
            for done in pending:
                outcomes.append(await self._undo_one(incident, done))
        finally:
            if self.on_undone is not None:
                self.recorder.observers.remove(seen)
        await self.recorder.flush()
        return outcomes

    def _seen(self, entry: TimelineEntry) -> None:
        if entry.kind == UNDO_RESULT and self.on_undone is not None:
            self.on_undone(entry)

    def _skip(self, incident: str, head: dict[str, Any], reason: str) -> dict[str, Any]:
        out = {**head, "status": StepStatus.SKIPPED.value, "reason": reason}
        self.recorder.append(UNDO_SKIPPED, out, incident)
        return out

    async def _undo_one(self, incident: str, done: Undoable) -> dict[str, Any]:
        step = done.result
        actuator = self.registry.get(step.actuator)
        head = {"undoes": step.key, "step": step.step, "actuator": actuator.name, "target": step.target}
        if step.changed is not True:
            return self._skip(incident, head, "the step changed nothing (or was recovered without prior state)")
        if actuator.reverse is None:
            return self._skip(incident, head, f"irreversible: {actuator.irreversible}")
        try:
            params = actuator.params.model_validate(done.params)
            result = ActuationResult(changed=True, target=step.target or "", prior=step.prior or {},
                                     after=step.after or {}, outputs=step.outputs or {})
            reverse_raw = actuator.reverse_params(params, result)
            if reverse_raw is None:
                return self._skip(incident, head, "nothing recorded to restore")
            reverse = self.registry.get(actuator.reverse)
            rparams = reverse.params.model_validate(reverse_raw)
        except ValidationError as exc:
            return self._skip(incident, head, f"recorded state does not validate: {exc.errors()[0]['msg']}")
        if reverse.destructive and not self.allow_destructive:
            return self._skip(incident, head, f"{reverse.name} is destructive: re-run with --allow-destructive")
        key = idempotency_key(incident, "undo", step.step, str(step.key))
        ctx = self.context.for_step(incident, key)
        forward = StepCall(actuator, params, self.context.for_step(incident, str(step.key)))
        try:  # the read is bounded by the reverse step's deadline, as the runner bounds a step's prior-state read
            async with asyncio.timeout(self.deadline):
                drift = await self._drift(forward, result.after)
            why = f"the target changed since the step ({drift})"
        except TimeoutError:
            log.warning("undo_drift_read_timed_out", actuator=actuator.name, timeout=self.deadline)
            drift = why = (f"could not read the target within the step's deadline ({self.deadline:g}s) to compare it "
                           "with the step's after-state")
        if drift is not None and not self.force:
            return self._skip(incident, {**head, "reverse": reverse.name}, f"{why}: re-run with --force to undo anyway")
        call = StepCall(reverse, rparams, ctx, attempts=self.attempts, timeout=self.deadline)
        who = {"operator": self.operator} if self.operator else {}
        if drift is not None:  # forced: what it overrode is recorded on the intent, the result and the outcome
            who["forced"] = drift
            log.warning("undo_forced", step=step.step, drift=drift)
        intent = StepIntent(**head, reverse=reverse.name, params=rparams.model_dump(mode="json"), key=key, **who)
        out = await run_step(self.recorder, call, intent, incident=incident, kinds=(UNDO_INTENT, UNDO_RESULT))
        if out.ok:
            log.info("step_undone", step=step.step, reverse=reverse.name, changed=out.changed)
        return out.body()

    @staticmethod
    async def _drift(forward: StepCall, after: Mapping[str, Any]) -> str | None:
        """How the target differs from the step's recorded after-state, or None when it still matches.

        Compare-and-set: an actuator that can report its state is compared field by field, over the fields
        the step recorded; one that cannot, or a step whose recorded after-state has fields `observe()` does
        not report (recorded before the actuator could observe, or in an older shape), or none at all, is
        asked whether its desired state still holds. The recorded after-state is read through the actuator's
        `comparable()` first (a stop recorded `stopping` by an older release is `stopped`).
        """
        current = await observe(forward)
        after = forward.actuator.comparable(after)
        if current is not None and after and after.keys() <= current.keys():
            diff = {k: (after.get(k), current.get(k)) for k in sorted(after) if after.get(k) != current.get(k)}
            if not diff:
                return None
            return "; ".join(f"{k}: recorded {was!r}, now {now!r}" for k, (was, now) in diff.items())
        return None if await verified(forward) else f"{forward.actuator.name} no longer verifies"
