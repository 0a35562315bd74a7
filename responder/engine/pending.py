"""The approvals a fleet waits for, from what it published: requests on `approval_requests_topic`, decisions on
`approvals_topic`. `responder approvals pending` prints them; `approve` and `deny` find a request's plan digest
here when the operator has no replica's timeline.

A step that parks publishes its request (again when it escalates); the latest request of an (incident, step) is
the one that counts. A decision answers it when it names the same digest. With approval keys configured, a
decision whose signature does not verify answers nothing (a forged decision must not hide a request), and is
counted; without keys the decision is shown as unverified.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel, ConfigDict, ValidationError

from responder.auth import KEY_ID_HEADER, SIGNATURE_HEADER, KeyRing
from responder.models.approval import ApprovalDecision, ApprovalRequest
from responder.models.event import RawRecord


class Answer(BaseModel):
    """A decision published for a request's digest."""

    model_config = ConfigDict(frozen=True)
    decision: str
    by: str
    verified: bool | None  # None: no approval keys here to check its signature


class Pending(BaseModel):
    """The latest request of a parked step, and the decision published for it, if any."""

    model_config = ConfigDict(frozen=True)
    request: ApprovalRequest
    answer: Answer | None = None
    expired: bool
    forged: int = 0  # decisions for this digest whose signature did not verify


def _header(record: RawRecord, name: str) -> str | None:
    value = record.header(name)
    return value.decode(errors="replace") if value else None


def latest_requests(records: Iterable[RawRecord]) -> dict[tuple[str, str], ApprovalRequest]:
    """The latest well-formed request of each (incident, step), in the order the topic holds them."""
    found: dict[tuple[str, str], ApprovalRequest] = {}
    for record in records:
        try:
            request = ApprovalRequest.model_validate_json(record.value)
        except ValidationError:
            continue  # not ours to judge here: the replicas only publish well-formed requests
        found.pop((request.incident, request.step), None)
        found[(request.incident, request.step)] = request
    return found


def pending(requests: Iterable[RawRecord], decisions: Iterable[RawRecord], keys: KeyRing | None,
            now: datetime, *, include_answered: bool = False, include_expired: bool = False) -> list[Pending]:
    """The latest request of every parked step, with its decision; by default only those still waiting."""
    answers: dict[tuple[str, str, str], Answer] = {}
    forged: dict[tuple[str, str, str], int] = {}
    for record in decisions:
        try:
            decision = ApprovalDecision.model_validate_json(record.value)
        except ValidationError:
            continue
        at = (decision.incident, decision.step, decision.digest)
        verified = None if not keys else keys.check(_header(record, KEY_ID_HEADER), _header(record, SIGNATURE_HEADER),
                                                    record.value) is None
        if verified is False:
            forged[at] = forged.get(at, 0) + 1
            continue
        answers[at] = Answer(decision=decision.decision, by=decision.by, verified=verified)
    out = []
    for (incident, step), request in latest_requests(requests).items():
        at = (incident, step, request.digest)
        item = Pending(request=request, answer=answers.get(at), expired=request.expires_at <= now,
                       forged=forged.get(at, 0))
        if (item.answer is None or include_answered) and (not item.expired or include_expired):
            out.append(item)
    return out
