"""Admitting an event into its incident: open, join, or suppress it (a redelivery of an evicted incident's event, or
one in its runbook's cooldown), with the event's time clamped to the engine's clock.

`Admission` is mixed into `Engine` (responder/engine/executor.py), which calls `_admit` under the group's turn, so an
event costs no indirection.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from responder.engine.incidents import Incident
from responder.engine.state import EngineState
from responder.models.event import Event
from responder.models.runbook import Runbook
from responder.models.timeline import EntryKind
from responder.models.view import iso_time
from responder.timeline.recorder import Recorder

MAX_CLOCK_SKEW = 300.0  # seconds an event's own time may run ahead of ours
_SKEW = timedelta(seconds=MAX_CLOCK_SKEW)  # built once, not per event
_OPENED, _JOINED = EntryKind.INCIDENT_OPENED, EntryKind.INCIDENT_JOINED  # an enum class's attribute costs ~0.5 us


class Admission:
    """Opens, joins or suppresses an event's incident (mixed into `Engine`)."""

    recorder: Recorder
    clock: Callable[[], float]
    state: EngineState

    def _admit(self, rb: Runbook, event: Event, group_key: str,
               ungrouped: str | None = None) -> tuple[Incident, bool | None, Event]:
        """Open, join or suppress the event's incident (under the group's lock); whether the event is new to it
        (`fresh`), or None when it was suppressed (no step runs); and the event, its time clamped to our clock.
        `ungrouped` says why `group_by` could not group it (recorded; `grouping.group_key`)."""
        latest = datetime.fromtimestamp(self.clock(), UTC) + _SKEW
        if event.time > latest:  # a future-dated event must not hold an incident open for ever
            event = event.model_copy(update={"time": latest})
        incidents = self.state.incidents
        incident = incidents.find(rb.id, group_key, event.time, rb.window)
        base = {"event_id": event.id, "runbook": rb.ref, "group_key": group_key, "event_time": iso_time(event.time)}
        if ungrouped is not None:
            base["ungrouped"] = ungrouped
        repeat = False
        ended = self.state.closed.until(rb.id, group_key) if incident is None else None
        if ended is not None and event.time.timestamp() <= ended:  # a redelivery of an evicted incident's event
            self.recorder.append(EntryKind.INCIDENT_SUPPRESSED, {**base, "reason": "evicted"}, None)
            return Incident("", rb.id, group_key, event.time, event.time), None, event
        if incident is None:
            last = incidents.latest(rb.id, group_key)
            if last is not None and rb.cooldown and event.time - last.opened_at < timedelta(seconds=rb.cooldown):
                self.recorder.append(EntryKind.INCIDENT_SUPPRESSED, {**base, "cooldown": rb.cooldown,
                                                                     "previous": last.id}, last.id)
                last.touched = self.clock()
                return last, None, event
            incident = incidents.open(rb.id, group_key, event.id, event.time)
            self.recorder.append(_OPENED, base, incident.id)
        else:
            repeat = incident.seen(event.id)
            if not repeat:
                incident.add(event.time)
            incident.last_seen = max(incident.last_seen, event.time)
            self.recorder.append(_JOINED, {**base, "repeat": repeat}, incident.id)
        incident.seen(event.id)
        incident.touched = self.clock()
        return incident, not repeat, event
