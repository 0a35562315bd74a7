"""Approval requests as a replica publishes them (signed with its timeline key), for `responder approvals pending`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from responder.engine.approvals import request_headers
from responder.models.approval import ApprovalRequest
from responder.models.event import RawRecord
from responder.timeline.checkpoint import Checker, Signer, generate_keypair

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
PRIVATE, PUBLIC = generate_keypair()
REPLICA, CHECKER = Signer.from_text(PRIVATE), Checker.from_text(PUBLIC)


def pending_request(digest: str = "a" * 64, *, minutes: int = 30, escalated: bool = False, target: str = "AKIA1",
                    signer: Signer | None = REPLICA, request_id: str | None = None,
                    reasons: tuple[str, ...] = ("approval required",)) -> RawRecord:
    """A published approval request for inc-1's `revoke` step, signed by `signer` (the replica's key by default)."""
    request = ApprovalRequest(incident="inc-1", step="revoke", runbook="rb", actuator="aws.iam.deactivate_access_key",
                              target=target, params={}, digest=digest, reasons=list(reasons),
                              approvers=["alice"], expires_at=NOW + timedelta(minutes=minutes), on_timeout="deny",
                              escalated=escalated, request_id=request_id)
    value = orjson.dumps(request.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return RawRecord(topic="req", value=value, headers=tuple(request_headers(signer, value)),
                     timestamp_ms=int(NOW.timestamp() * 1000))
