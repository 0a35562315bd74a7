"""Rebuild engine state from the timeline: a step with a result is never repeated, parked steps stay parked."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from responder.engine.approvals import Parked
from responder.models.timeline import EntryKind, TimelineEntry

if TYPE_CHECKING:
    from responder.engine.executor import Engine

_UNPARK = (EntryKind.APPROVAL_DECIDED, EntryKind.APPROVAL_EXPIRED)


def replay(engine: Engine, entries: Iterable[TimelineEntry]) -> int:
    """Apply every entry to the engine's state; returns how many were read."""
    count = 0
    for entry in entries:
        count += 1
        body = entry.body
        if entry.kind in (EntryKind.INCIDENT_OPENED, EntryKind.INCIDENT_JOINED) and entry.incident:
            runbook = str(body.get("runbook", "")).split("@", 1)[0]
            at = datetime.fromisoformat(str(body["event_time"]))
            inc = engine.incidents.restore(entry.incident, runbook, str(body.get("group_key")), at,
                                           str(body.get("event_id", "")))
            if entry.kind == EntryKind.INCIDENT_OPENED and not inc.times:
                inc.times.append(at)
            elif entry.kind == EntryKind.INCIDENT_JOINED and not body.get("repeat"):
                inc.add(at)
        elif entry.kind == EntryKind.STEP_INTENT:
            engine.inflight[str(body["key"])] = dict(body)
            runbook = str(body.get("runbook", "")) or _runbook_of(engine, entry.incident)
            clock = body.get("clock")
            when = float(clock) if isinstance(clock, int | float) else datetime.fromisoformat(entry.at).timestamp()
            engine.guards.record(runbook, str(body["actuator"]), when, str(body["key"]))
        elif entry.kind == EntryKind.STEP_RESULT and "key" in body:
            _result(engine, entry)
        elif entry.kind == EntryKind.APPROVAL_REQUESTED and entry.incident:
            engine.parked[(entry.incident, str(body["step"]))] = Parked.from_body(entry.incident, dict(body))
        elif entry.kind == EntryKind.APPROVAL_ESCALATED and entry.incident:
            found = engine.parked.get((entry.incident, str(body["step"])))
            if found is not None:
                found.escalated, found.deadline = True, float(body["deadline"])  # type: ignore[arg-type]
        elif entry.kind in _UNPARK and entry.incident:
            engine.parked.pop((entry.incident, str(body["step"])), None)
    return count


def _runbook_of(engine: Engine, incident: str | None) -> str:
    found = engine.incidents.by_id.get(incident or "")
    return found.runbook if found is not None else ""


def _result(engine: Engine, entry: TimelineEntry) -> None:
    body = entry.body
    key = str(body["key"])
    engine.inflight.pop(key, None)
    engine.done[key] = dict(body)
    engine.guards.settle(key, body)
    if entry.incident:
        engine.parked.pop((entry.incident, str(body.get("step"))), None)
    if entry.incident and body.get("status") == "ok":
        found = engine.incidents.by_id.get(entry.incident)
        outputs = body.get("outputs")
        if found is not None and isinstance(outputs, dict):
            found.step_outputs[str(body["step"])] = {"result": outputs}
