"""Approval requests and decisions as they travel on Kafka (pure data; signing is in responder.auth)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue

from responder.models.signed import NAME_MAX

REQUESTS_TOPIC = "responder.approvals.requests"
DECISIONS_TOPIC = "responder.approvals"
REQUEST_ID = r"^[0-9a-f]{32}$"


class ApprovalRequest(BaseModel):
    """Published when a step parks: what would run, why a human is needed, and until when."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    incident: str
    step: str
    runbook: str
    actuator: str
    target: str
    params: dict[str, JsonValue]
    digest: str = Field(pattern=r"^[0-9a-f]{64}$", description="plan digest the decision must carry")
    reasons: list[str]
    approvers: list[str]
    expires_at: AwareDatetime
    on_timeout: str
    escalated: bool = False
    request_id: str | None = Field(default=None, pattern=REQUEST_ID,
                                   description="this parking's id, which a decision must copy (none before 2026-12-04)")


class ApprovalDecision(BaseModel):
    """A human's signed answer to one request; valid only for the request and digest it names, until `expires_at`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    incident: str = Field(max_length=NAME_MAX)
    step: str = Field(max_length=NAME_MAX)
    decision: Literal["approve", "deny"]
    by: str = Field(min_length=1, max_length=200)
    reason: str = Field(default="", max_length=2000)
    digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    issued_at: AwareDatetime
    expires_at: AwareDatetime
    request_id: str | None = Field(default=None, pattern=REQUEST_ID,
                                   description="the request it answers: a step parked again waits on a new one")

    def canonical(self) -> bytes:
        """The exact bytes that are signed and sent as the record value (no `request_id` key when it has none, as a
        decision for a request published before requests had ids)."""
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True), option=orjson.OPT_SORT_KEYS)

    def expired(self, now: datetime) -> bool:
        """Whether the decision is too old to act on."""
        return now >= self.expires_at
