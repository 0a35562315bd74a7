"""Run an undone step again on purpose (`responder redo INCIDENT --step ID`): the operator's way back from an undo.

An undone step stays undone in its incident (responder/engine/undone.py): a later event does not apply it again. Redo
runs its actuator once more through `run_step`, with the params its intent recorded, under its own step key, as
`step.intent` and `step.result` carrying `operator` (who asked) and `redoes` (the seq of the `undo.result` it
overrides); the new result clears the mark, so the step is done again (and undoable again). Like undo, it runs no
guard: the step passed them when it first ran, and a human asks for it. A destructive step (stopping an instance) is
refused: it needs an approval, so run it by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

import structlog
from pydantic import ValidationError

from responder.actuators.base import ActuationContext
from responder.actuators.registry import Registry
from responder.engine.readback import StepCall
from responder.engine.runner import run_step
from responder.engine.undone import Undone, undone_by
from responder.errors import ConfigError
from responder.models.runbook import Step
from responder.models.step import StepIntent
from responder.models.timeline import EntryKind, TimelineEntry
from responder.timeline.recorder import Recorder

log = structlog.get_logger(__name__)


class UndoneStep(NamedTuple):
    """The intent of a step key whose latest ok result an ok `undo.result` reversed, and that undo's mark."""

    intent: StepIntent
    undone: Undone


def undone_steps(entries: Iterable[TimelineEntry], incident: str, step: str) -> list[UndoneStep]:
    """The incident's results of step `step` that an undo reversed and nothing ran again since, oldest first."""
    intents: dict[str, StepIntent] = {}
    results: set[str] = set()
    marks: dict[str, Undone] = {}
    for e in entries:
        if e.incident != incident:
            continue
        if e.kind == EntryKind.STEP_INTENT and e.body.get("step") == step:
            intent = StepIntent.read(e.body)
            intents[str(intent.key)] = intent
        elif e.kind == EntryKind.STEP_RESULT and e.body.get("step") == step and "key" in e.body:
            results.add(str(e.body["key"]))
            marks.pop(str(e.body["key"]), None)
        elif (found := undone_by(e)) is not None and found[0] in results:
            marks[found[0]] = found[1]
    return [UndoneStep(intents[key], mark) for key, mark in marks.items() if key in intents]


class Redoer:
    """Runs undone steps of one incident again, recorded on the timeline."""

    def __init__(self, recorder: Recorder, registry: Registry, context: ActuationContext, *,
                 operator: str | None = None, on_entry: Callable[[TimelineEntry], None] | None = None) -> None:
        """`on_entry` is given each step entry as it is appended (the running service folds it into its engine state,
        so the step is done again there before the entry is durable)."""
        self.recorder, self.registry, self.context = recorder, registry, context
        self.operator, self.on_entry = operator, on_entry

    async def redo(self, incident: str, step: str) -> list[dict[str, object]]:
        """Run the incident's undone `step` again; ConfigError when it has none. One outcome per step key."""
        await self.recorder.flush()
        found = undone_steps(self.recorder.entries(), incident, step)
        if not found:
            raise ConfigError(f"incident {incident} has no undone step {step!r} (`responder timeline show` lists "
                              "its steps; only a step whose undo succeeded, not run again since, can be redone)")
        if self.on_entry is not None:
            self.recorder.observers.append(self._seen)
        try:
            return [await self._redo_one(incident, done) for done in found]
        finally:
            if self.on_entry is not None:
                self.recorder.observers.remove(self._seen)
            await self.recorder.flush()

    def _seen(self, entry: TimelineEntry) -> None:
        if entry.kind in (EntryKind.STEP_INTENT, EntryKind.STEP_RESULT) and self.on_entry is not None:
            self.on_entry(entry)

    async def _redo_one(self, incident: str, done: UndoneStep) -> dict[str, object]:
        actuator = self.registry.get(done.intent.actuator)
        if actuator.destructive:
            raise ConfigError(f"{actuator.name} is destructive: its step needs an approval; run it by hand")
        try:
            params = actuator.params.model_validate(done.intent.params)
        except ValidationError as exc:
            raise ConfigError(f"the recorded params do not validate: {exc.errors()[0]['msg']}") from exc
        key = str(done.intent.key)
        defaults = Step(id=done.intent.step, actuator=actuator.name)
        call = StepCall(actuator, params, self.context.for_step(incident, key), attempts=defaults.retries + 1,
                        timeout=defaults.timeout)
        who = {"operator": self.operator} if self.operator else {}
        intent = StepIntent(step=done.intent.step, actuator=actuator.name, target=done.intent.target, key=key,
                            params=params.model_dump(mode="json"), destructive=False, runbook=done.intent.runbook,
                            redoes=done.undone.seq, **who)
        result = await run_step(self.recorder, call, intent, incident=incident)
        log.info("step_redone", step=intent.step, ok=result.ok, redoes=done.undone.seq)
        return result.body()
