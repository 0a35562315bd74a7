"""The pipeline: raw record → events → matches → engine. The only module that sees every stage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog

from responder.engine.executor import Engine
from responder.engine.incidents import Incident
from responder.models.event import RawRecord
from responder.models.runbook import Runbook
from responder.models.timeline import EntryKind
from responder.normalise import normalise
from responder.rules.matcher import Matcher

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

    def __init__(self, runbooks: Sequence[Runbook], engine: Engine, *, max_record_bytes: int = 1024 * 1024) -> None:
        self.matcher = Matcher(runbooks)
        self.engine = engine
        engine.use_runbooks(runbooks)
        self.max_record_bytes = max_record_bytes
        self.counters = Counters()

    async def handle(self, record: RawRecord) -> list[Incident]:
        """Normalise, match and execute; timeline entries are appended (flushed by the caller)."""
        self.counters.records += 1
        events = normalise(record.value, max_bytes=self.max_record_bytes)
        incidents: list[Incident] = []
        rec = self.engine.recorder
        for event in events:
            self.counters.events += 1
            matches = self.matcher.match(event)
            if not matches:
                continue
            self.counters.matched += 1
            rec.append(EntryKind.EVENT_RECEIVED, {
                "event_id": event.id, "source": event.source, "type": event.type,
                "severity": event.severity.score, "time": event.time.isoformat(),
                "resources": [{"kind": r.kind.value, "id": r.id} for r in event.resources],
                "incident_key": event.incident_key,
                "origin": {"topic": record.topic, "partition": record.partition, "offset": record.offset},
            })
            for match in matches:
                rec.append(EntryKind.EVENT_MATCHED, {"event_id": event.id, "runbook": match.runbook.ref})
                log.info("runbook_matched", runbook=match.runbook.id, event_id=event.id)
                incidents.append(await self.engine.handle(match))
        return incidents
