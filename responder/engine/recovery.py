"""Rebuild engine state from the timeline: a step with a result is never repeated."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from responder.models.timeline import EntryKind, TimelineEntry

if TYPE_CHECKING:
    from responder.engine.executor import Engine


def replay(engine: Engine, entries: Iterable[TimelineEntry]) -> int:
    """Apply every entry to the engine's state; returns how many were read."""
    count = 0
    for entry in entries:
        count += 1
        body = entry.body
        if entry.kind in (EntryKind.INCIDENT_OPENED, EntryKind.INCIDENT_JOINED) and entry.incident:
            runbook = str(body.get("runbook", "")).split("@", 1)[0]
            at = datetime.fromisoformat(str(body["event_time"]))
            inc = engine.incidents.restore(entry.incident, runbook, str(body.get("group_key")), at)
            if entry.kind == EntryKind.INCIDENT_JOINED:
                inc.events += 1
        elif entry.kind == EntryKind.STEP_INTENT:
            engine.inflight[str(body["key"])] = dict(body)
        elif entry.kind == EntryKind.STEP_RESULT and "key" in body:
            key = str(body["key"])
            engine.inflight.pop(key, None)
            engine.done[key] = dict(body)
            if entry.incident and body.get("status") == "ok":
                found = engine.incidents.by_id.get(entry.incident)
                outputs = body.get("outputs")
                if found is not None and isinstance(outputs, dict):
                    found.step_outputs[str(body["step"])] = {"result": outputs}
    return count
