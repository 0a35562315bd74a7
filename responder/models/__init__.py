"""Pure data crossing stage boundaries: no I/O here."""

from responder.models.event import Event, RawRecord, Resource, ResourceKind, Severity, SeverityLabel
from responder.models.plan import Plan, PlannedStep, idempotency_key
from responder.models.runbook import Condition, Mode, OnFailure, Runbook, Step, Trigger
from responder.models.threat import Threat, ThreatCategory
from responder.models.timeline import GENESIS_HASH, EntryKind, TimelineEntry

__all__ = [
    "GENESIS_HASH",
    "Condition",
    "EntryKind",
    "Event",
    "Mode",
    "OnFailure",
    "Plan",
    "PlannedStep",
    "RawRecord",
    "Resource",
    "ResourceKind",
    "Runbook",
    "Severity",
    "SeverityLabel",
    "Step",
    "Threat",
    "ThreatCategory",
    "TimelineEntry",
    "Trigger",
    "idempotency_key",
]
