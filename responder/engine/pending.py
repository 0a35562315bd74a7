"""The approvals a fleet waits for, from what it published: requests on `approval_requests_topic`, decisions on
`approvals_topic`. `responder approvals pending` prints them; `approve` and `deny` find a request's plan digest
here when the operator has no replica's timeline.

A step that parks publishes its request (again when it escalates), signed with the replica's first approval
key; the latest request of an (incident, step) is the one that counts. A decision answers it when it names the
same digest. With approval keys configured, only signed requests count: one that does not verify (unsigned, or
forged by whoever can write to the topic) could show an operator another target than the plan its digest binds,
so it is refused and counted, never used. Likewise a decision that does not verify answers nothing (a forged
decision must not hide a request), and is counted. Without keys both are shown as unverified.
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


class Requests(BaseModel):
    """The latest trusted request of each (incident, step), in the order the topic holds them, and how many
    records were refused (not a request, or with keys configured, not signed by one of them)."""

    model_config = ConfigDict(frozen=True)
    latest: dict[tuple[str, str], ApprovalRequest]
    refused: int = 0


def _verified(record: RawRecord, keys: KeyRing | None) -> bool | None:
    """Whether `record` is signed by one of `keys`; None without keys (nothing to check with)."""
    if not keys:
        return None
    return keys.check(_header(record, KEY_ID_HEADER), _header(record, SIGNATURE_HEADER), record.value) is None


def latest_requests(records: Iterable[RawRecord], keys: KeyRing | None = None) -> Requests:
    """The latest request of each parked step among the well-formed (and, with `keys`, signed) records."""
    found: dict[tuple[str, str], ApprovalRequest] = {}
    refused = 0
    for record in records:
        try:
            request = ApprovalRequest.model_validate_json(record.value)
        except ValidationError:
            refused += 1
            continue
        if _verified(record, keys) is False:
            refused += 1
            continue
        found.pop((request.incident, request.step), None)
        found[(request.incident, request.step)] = request
    return Requests(latest=found, refused=refused)


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
        verified = _verified(record, keys)
        if verified is False:
            forged[at] = forged.get(at, 0) + 1
            continue
        answers[at] = Answer(decision=decision.decision, by=decision.by, verified=verified)
    out = []
    for (incident, step), request in latest_requests(requests, keys).latest.items():
        at = (incident, step, request.digest)
        item = Pending(request=request, answer=answers.get(at), expired=request.expires_at <= now,
                       forged=forged.get(at, 0))
        if (item.answer is None or include_answered) and (not item.expired or include_expired):
            out.append(item)
    return out
