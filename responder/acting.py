"""The acting stage of the pipeline: a prepared record's matched events recorded on the timeline and their runbooks
run by the engine. `Acting` is mixed into `Pipeline` (responder/pipeline.py), which decodes and matches: a record
costs no indirection between the two stages."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from responder.engine.executor import Engine
from responder.engine.incidents import Incident
from responder.errors import EventRejected
from responder.log import context_vars
from responder.log import enabled as log_enabled
from responder.metrics import ALERT_AT, Metrics
from responder.models.event import REPLAY_OF_HEADER, Event, RawRecord
from responder.models.timeline import EntryKind
from responder.models.view import iso_time
from responder.rules.matcher import Match
from responder.tracing import STAMP, current_trace_id, stamp_of

log = structlog.get_logger("responder.pipeline")  # the events' logger name, as before the stage had its module
_TRACE_ID, = context_vars("trace_id")  # structlog's, set directly
_RECEIVED, _MATCHED = EntryKind.EVENT_RECEIVED, EntryKind.EVENT_MATCHED  # an enum class's attribute costs ~0.5 us


@dataclass
class Counters:
    """What the pipeline has seen (exported as metrics)."""

    records: int = 0
    events: int = 0
    matched: int = 0
    rejected: dict[str, int] = field(default_factory=dict)


@dataclass
class Prepared:
    """A record decoded and matched (no side effects yet); `found` holds only the events some runbook accepts, and
    `rejected` the parts of the record that could not be decoded (PartlyRejected: dead-lettered, the rest acted on).
    """

    record: RawRecord
    trace: str | None
    found: list[tuple[Event, list[Match]]]
    rejected: EventRejected | None = None
    stamped: datetime | None = None  # `record.stamped()`, read once by the decode (None when it did not decode)


class Acting:
    """Records a prepared record's matched events and runs their runbooks (mixed into `Pipeline`)."""

    engine: Engine
    counters: Counters
    metrics: Metrics
    _matched_published = 0  # `counters.matched` when `publish_matched` last added it to the metric

    def publish_matched(self) -> None:
        """Add the events matched since the last call to `responder_events_matched` (one `inc` per chunk, not one
        per event): called when a chunk's acting ends, and by `handle` after its record's."""
        matched = self.counters.matched
        if matched != self._matched_published:
            self.metrics.matched.inc(matched - self._matched_published)
            self._matched_published = matched

    async def act(self, prepared: Prepared) -> list[Incident]:
        """Record the matched events and run their runbooks (in this task: its context carries the alert time)."""
        if not prepared.found:
            return []
        record, trace = prepared.record, prepared.trace or current_trace_id()
        _TRACE_ID.set(trace)  # `bind_contextvars(trace_id=trace)`, without its lookup by name and dicts
        # None for no time (-1, 0), one out of range (µs by mistake), or a dead letter's replay, which bears the
        # original record's time (responder/ingest/deadletter.py): no latency sample
        stamped = prepared.stamped if record.header(REPLAY_OF_HEADER) is None else None
        ALERT_AT.set(stamped.timestamp() if stamped is not None else None)  # this task's alert → dispatch
        incidents: list[Incident] = []
        rec, engine = self.engine.recorder, self.engine
        stamp = STAMP.set(stamp_of(trace))  # `with stamped(trace)` without its object and bound __exit__ kept
        try:  # every entry this record causes carries its trace id; `_value_`: an enum's value without its descriptor
            for event, matches in prepared.found:
                self.counters.matched += 1  # `responder_events_matched` once per chunk: `publish_matched`
                rec.append(_RECEIVED, {
                    "event_id": event.id, "source": event.source, "type": event.type,
                    "severity": event.severity.score, "time": iso_time(event.time),
                    "resources": [{"kind": r.kind._value_, "id": r.id} for r in event.resources],
                    "incident_key": event.incident_key,
                    "origin": {"topic": record.topic, "partition": record.partition, "offset": record.offset},
                })
                for match in matches:
                    rec.append(_MATCHED, {"event_id": event.id, "runbook": match.runbook.ref})
                    if log_enabled(logging.INFO):  # a filtered call still costs a logger bind per event
                        log.info("runbook_matched", runbook=match.runbook.id, event_id=event.id)
                    incidents.append(await engine.handle(match))  # no bound method kept meanwhile
        finally:
            STAMP.reset(stamp)
        return incidents
