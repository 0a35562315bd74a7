"""Approval requests and decisions as they travel on Kafka (pure data; signing is in responder.auth)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue

REQUESTS_TOPIC = "responder.approvals.requests"
DECISIONS_TOPIC = "responder.approvals"


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


class ApprovalDecision(BaseModel):
    """A human's signed answer; valid only for the digest it names and until `expires_at`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    incident: str
    step: str
    decision: Literal["approve", "deny"]
    by: str = Field(min_length=1, max_length=200)
    reason: str = Field(default="", max_length=2000)
    digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    issued_at: AwareDatetime
    expires_at: AwareDatetime

    def canonical(self) -> bytes:
        """The exact bytes that are signed and sent as the record value."""
        return orjson.dumps(self.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)

    def expired(self, now: datetime) -> bool:
        """Whether the decision is too old to act on."""
        return now >= self.expires_at
