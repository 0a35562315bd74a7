"""Timeline entries: append-only, hash-chained records of everything responder does."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, JsonValue

GENESIS_HASH = "0" * 64


class EntryKind(StrEnum):
    """What an entry records (`noun.verb`)."""

    EVENT_RECEIVED = "event.received"
    EVENT_MATCHED = "event.matched"
    INCIDENT_OPENED = "incident.opened"
    INCIDENT_JOINED = "incident.joined"
    INCIDENT_SUPPRESSED = "incident.suppressed"
    STEP_PLANNED = "step.planned"
    STEP_INTENT = "step.intent"
    STEP_RESULT = "step.result"
    STEP_SKIPPED = "step.skipped"
    STEP_ESCALATED = "step.escalated"
    ESCALATION_MISSED = "escalation.missed"
    RECORD_REJECTED = "record.rejected"
    GUARD_TRIPPED = "guard.tripped"
    APPROVAL_REQUESTED = "approval.requested"
    APPROVAL_DECIDED = "approval.decided"
    APPROVAL_REJECTED = "approval.rejected"
    APPROVAL_EXPIRED = "approval.expired"
    APPROVAL_ESCALATED = "approval.escalated"
    APPROVAL_WITHDRAWN = "approval.withdrawn"
    APPROVAL_SETTLED = "approval.settled"
    CHECKPOINT = "checkpoint"
    TABLETOP_SCORECARD = "tabletop.scorecard"


class TimelineEntry(BaseModel):
    """One sealed timeline entry; `hash` covers every other field and `prev`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int
    writer: str
    at: str
    kind: str
    incident: str | None = None
    body: dict[str, JsonValue]
    prev: str
    hash: str
