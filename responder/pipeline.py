"""The pipeline: raw record → events → matches → engine. The only module that sees every stage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog

from responder.engine.executor import Engine
from responder.engine.incidents import Incident
from responder.errors import TooLarge
from responder.ingest.authn import RecordAuthenticator
from responder.metrics import ALERT_AT, Metrics
from responder.models.event import RawRecord
from responder.models.runbook import Runbook
from responder.models.timeline import EntryKind
from responder.normalise import normalise
from responder.rules.matcher import Matcher
from responder.tracing import extract, span, trace_id_of

log = structlog.get_logger(__name__)


@dataclass
class Counters:
    """What the pipeline has seen (exported as metrics)."""

    records: int = 0
    events: int = 0
    matched: int = 0
    rejected: dict[str, int] = field(default_factory=dict)


class Pipeline:
    """Handles one raw record at a time; raises EventRejected for poison (the caller dead-letters it)."""

    def __init__(self, runbooks: Sequence[Runbook], engine: Engine, *, max_record_bytes: int = 1024 * 1024,
                 topic_formats: Mapping[str, str] | None = None, authenticator: RecordAuthenticator | None = None,
                 metrics: Metrics | None = None) -> None:
        self.matcher = Matcher(runbooks)
        self.engine = engine
        engine.use_runbooks(runbooks)
        self.max_record_bytes = max_record_bytes
        self.counters = Counters()
        self.topic_formats = dict(topic_formats or {})
        self.authenticator = authenticator or RecordAuthenticator()
        self.metrics = metrics or Metrics()

    async def handle(self, record: RawRecord) -> list[Incident]:
        """Normalise, match and execute; timeline entries are appended (flushed by the caller)."""
        trace = trace_id_of(record.headers) if record.header("traceparent") else None
        structlog.contextvars.bind_contextvars(trace_id=trace)
        with span("responder.record", extract(record.headers) if trace else None,
                  attributes={"messaging.destination.name": record.topic, "messaging.kafka.offset": record.offset}):
            return await self._handle(record, trace)

    async def _handle(self, record: RawRecord, trace: str | None) -> list[Incident]:
        self.counters.records += 1
        self.metrics.records.labels(record.topic).inc()
        ALERT_AT.set(record.timestamp_ms / 1000 if record.timestamp_ms else None)  # this task's alert → dispatch
        if len(record.value) > self.max_record_bytes:  # before hashing or parsing anything
            raise TooLarge(f"record of {len(record.value)} bytes exceeds the limit of {self.max_record_bytes}")
        signed_by = self.authenticator.verify(record)
        received = datetime.fromtimestamp(record.timestamp_ms / 1000, UTC) if record.timestamp_ms else None
        with span("decode"):
            events = normalise(record.value, max_bytes=self.max_record_bytes,
                               fmt=self.topic_formats.get(record.topic), received=received)
        self.authenticator.check_sources(events, signed_by)
        if signed_by is not None:
            self.metrics.authenticated.labels(signed_by).inc()
        incidents: list[Incident] = []
        rec = self.engine.recorder
        for event in events:
            self.counters.events += 1
            self.metrics.events.labels(event.source).inc()
            with span("match", attributes={"responder.event_id": event.id}):
                matches = self.matcher.match(event)
            self.metrics.event_outcomes.labels(event.source, "matched" if matches else "unmatched").inc()
            if not matches:
                continue
            self.counters.matched += 1
            self.metrics.matched.inc()
            rec.append(EntryKind.EVENT_RECEIVED, {
                "event_id": event.id, "source": event.source, "type": event.type,
                "severity": event.severity.score, "time": event.time.isoformat(),
                "resources": [{"kind": r.kind.value, "id": r.id} for r in event.resources],
                "incident_key": event.incident_key,
                "origin": {"topic": record.topic, "partition": record.partition, "offset": record.offset},
                **({"trace_id": trace} if trace else {}),
            })
            for match in matches:
                rec.append(EntryKind.EVENT_MATCHED, {"event_id": event.id, "runbook": match.runbook.ref})
                log.info("runbook_matched", runbook=match.runbook.id, event_id=event.id)
                incidents.append(await self.engine.handle(match))
        return incidents
