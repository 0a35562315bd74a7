"""The approvals a fleet waits for, from what it published: requests on `approval_requests_topic`, decisions on
`approvals_topic`. `responder approvals pending` prints them; `approve` and `deny` find a request's plan digest
here when the operator has no replica's timeline.

A step that parks publishes its request (again when it escalates); the latest request of an (incident, step) is
the one that counts. A replica with a timeline signing key signs each request (Ed25519, responder/engine/
approvals.py); with the public key (`RESPONDER_TIMELINE_VERIFY_KEY`) only signed requests count. One that does not
verify (unsigned, or written by whoever can write to the topic) could show the operator another target than the
plan its digest binds, so it is refused and counted, never used.

Each parking of a step has a random request id (an escalation re-publishes the same one). A decision answers the
step's latest request when it names the same digest and the same request id, and the engine would accept it: its
HMAC signature verifies under `RESPONDER_APPROVAL_KEYS`, its key stands for its `by`, `by` is one of the request's
approvers, and it had not expired when it was published (`check_identity`, as the engine applies it). A decision
naming another request id answered another parking and is skipped, as another plan's is. One naming no id, for a
request that has one, is refused by the engine (`other_request`). Requests and decisions from before ids existed
have none: then a decision published before the plan's last request answers nothing (an earlier parking), by the
records' timestamps. Any decision for the request that answers nothing is listed with why: a forged or
unauthorised "approve" must not hide a waiting step. Without approval keys a decision is shown as unverified.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel, ConfigDict, ValidationError

from responder.auth import KEY_ID_HEADER, SIGNATURE_HEADER, ApproverKeys
from responder.engine.approvals import (
    REQUEST_DOMAIN,
    REQUEST_KEY_HEADER,
    REQUEST_SIGNATURE_HEADER,
    check_identity,
    other_request,
)
from responder.errors import ApprovalRefused
from responder.models.approval import ApprovalDecision, ApprovalRequest
from responder.models.event import RawRecord
from responder.models.signed import too_large
from responder.timeline.checkpoint import Checker


class Answer(BaseModel):
    """A decision published for a request's digest."""

    model_config = ConfigDict(frozen=True)
    decision: str
    by: str
    verified: bool | None  # None: no approval keys here to check it
    lapsed: bool = False  # expired by now: if the step still waits (the engine had not applied it), decide again


class Pending(BaseModel):
    """The latest request of a parked step, the decision that answers it, if any, and the decisions that do not."""

    model_config = ConfigDict(frozen=True)
    request: ApprovalRequest
    request_verified: bool | None  # None: no public key here to check the replica's signature
    answer: Answer | None = None
    expired: bool
    refused: list[str] = []  # why each decision for this plan answers nothing (forged, not an approver, expired)


class Published(BaseModel):
    """One plan requested for a step: its last request on the topic, where that is, and the key it claims."""

    model_config = ConfigDict(frozen=True)
    request: ApprovalRequest
    partition: int
    offset: int
    key_id: str | None  # the replica key its headers name (verified only when `Requests.checked`)


class Requests(BaseModel):
    """The latest trusted request of each (incident, step), in the order the topic holds them, and how many
    records were refused (not a request, or, with a public key, not signed by a replica)."""

    model_config = ConfigDict(frozen=True)
    refused: int = 0
    asked_ms: dict[tuple[str, str, str], int] = {}  # when each (incident, step, digest) was last requested
    checked: bool = False  # whether the signatures were checked (a public key was given)
    plans: dict[tuple[str, str], dict[str, Published]] = {}  # every plan requested for each step, by digest,
    # in the order read: `approve` signs one only when the step has no other (a replay or a re-plan is a choice)

    @property
    def latest(self) -> dict[tuple[str, str], ApprovalRequest]:
        """The latest request of each step (its last plan read), the steps in the order of their last request."""
        return {at: next(reversed(by_digest.values())).request for at, by_digest in self.plans.items()}


def _header(record: RawRecord, name: str) -> str | None:
    value = record.header(name)
    return value.decode(errors="replace") if value else None


def request_signed(record: RawRecord, checker: Checker | None) -> bool | None:
    """Whether a replica's timeline key signed this request record; None without public keys to check with."""
    if checker is None:
        return None
    return checker.verifies(_header(record, REQUEST_KEY_HEADER), _header(record, REQUEST_SIGNATURE_HEADER),
                            REQUEST_DOMAIN + record.value)


def latest_requests(records: Iterable[RawRecord], checker: Checker | None = None) -> Requests:
    """The latest request of each parked step among the well-formed (and, with `checker`, signed) records."""
    asked_ms: dict[tuple[str, str, str], int] = {}
    plans: dict[tuple[str, str], dict[str, Published]] = {}
    seen: dict[tuple[str, str], set[str]] = {}  # the request ids read so far for each step
    refused = 0
    for record in records:
        if record.unreadable is not None:  # the Kafka client could not parse it: not as its replica sent it
            refused += 1
            continue
        try:
            request = ApprovalRequest.model_validate_json(record.value)
        except ValidationError:
            refused += 1
            continue
        if request_signed(record, checker) is False:
            refused += 1
            continue
        at = (request.incident, request.step)
        step_plans = plans.pop(at, {})  # the step moves to the end: `latest` lists steps by their last request
        plans[at] = step_plans
        escalation = request.escalated  # this record's own: the merge below may carry an earlier copy's
        known = step_plans.get(request.digest)  # each plan once, where it was last requested; with the latest
        # deadline any of its requests gave (an escalation extends it: a replayed older copy must not shorten it,
        # which would hide a waiting step from `pending` and make `approve` call it expired), and that copy's
        # request id (a replayed copy must not bring back an earlier parking's, which a used decision names)
        ids = seen.get(at, set())
        copy = request.request_id is not None and request.request_id in ids  # its parking published again
        if known is not None and request.request_id in ids and request.request_id != known.request.request_id:
            continue  # a replayed copy of a parking before `known`'s: `known` stays whole, and where it was in the
            # order read (its reasons, approvers, where it was read and when it was asked)
        step_plans.pop(request.digest, None)  # this plan moves to the end: the step's last plan read
        if known is not None and _older(request, known.request, ids):
            was = known.request
            escalated = was.escalated or (request.escalated and request.request_id == was.request_id)
            request = request.model_copy(update={"expires_at": was.expires_at, "escalated": escalated,
                                                 "request_id": was.request_id})
        if request.request_id is not None:
            seen.setdefault(at, set()).add(request.request_id)
        step_plans[request.digest] = Published(request=request, partition=record.partition, offset=record.offset,
                                               key_id=_header(record, REQUEST_KEY_HEADER))
        stamp = _stamp(record)
        if stamp is not None:
            at_plan = (request.incident, request.step, request.digest)
            if at_plan not in asked_ms or not (escalation or copy):  # an escalation, or a replica that recovered the
                # step (responder/engine/asking.py), re-publishes the same parking: it was not asked for again
                asked_ms[at_plan] = max(stamp, asked_ms.get(at_plan, stamp))
    return Requests(refused=refused, asked_ms=asked_ms, checked=checker is not None, plans=plans)


def _older(later: ApprovalRequest, known: ApprovalRequest, seen: set[str]) -> bool:
    """Whether `later`, read after `known` for the same plan (and not a copy of an earlier parking), is a replayed
    older copy of it: it expires earlier and is not a parking not seen before (a new id)."""
    new = later.request_id is not None and later.request_id not in seen
    return known.expires_at > later.expires_at and not new


def _stamp(record: RawRecord) -> int | None:
    """The record's timestamp in ms, None when it has none (-1 from an old message format)."""
    return record.timestamp_ms if record.timestamp_ms is not None and record.timestamp_ms > 0 else None


def _judge(record: RawRecord, decision: ApprovalDecision, request: ApprovalRequest,
           keys: ApproverKeys | None, now: datetime, mismatch: str | None = None) -> Answer | str:
    """The answer `decision` gives `request`, or why it gives none (as the engine would refuse it, in its order:
    the signature, then `mismatch`, the request the decision names, then who signed it)."""
    if not keys:
        if mismatch is not None:
            return f"{decision.decision} by {decision.by}: {mismatch}"
        return Answer(decision=decision.decision, by=decision.by, verified=None, lapsed=decision.expired(now))
    key_id = _header(record, KEY_ID_HEADER)
    problem = keys.check(key_id, _header(record, SIGNATURE_HEADER), record.value) or mismatch
    if problem:
        return f"{decision.decision} by {decision.by}: {problem}"
    published = record.stamped() or decision.issued_at
    try:
        check_identity(decision, key_id, keys, request.approvers, published)
    except ApprovalRefused as exc:
        return f"{decision.decision} by {decision.by}: {exc}"
    if decision.expired(published):
        return f"{decision.decision} by {decision.by}: expired before it was published"
    return Answer(decision=decision.decision, by=decision.by, verified=True, lapsed=decision.expired(now))


def pending(read: Requests, decisions: Iterable[RawRecord], keys: ApproverKeys | None, now: datetime, *,
            include_answered: bool = False, include_expired: bool = False) -> list[Pending]:
    """The latest request of every parked step (`read`: `latest_requests`), with its answer; by default only those
    still waiting."""
    latest = read.latest
    answers: dict[tuple[str, str], Answer] = {}
    refused: dict[tuple[str, str], list[str]] = {}
    for record in decisions:
        if too_large(record.value):  # the engine refuses it as malformed, as one it cannot read (since 2026-12-07)
            continue
        try:
            decision = ApprovalDecision.model_validate_json(record.value)
        except ValidationError:
            continue
        request = latest.get((decision.incident, decision.step))
        if request is None or request.digest != decision.digest:
            continue  # another plan's decision (an older request, or nothing we list)
        if decision.request_id is not None and decision.request_id != request.request_id:
            continue  # it answered another parking of the step (an earlier one, used or not)
        asked, stamp = read.asked_ms.get((request.incident, request.step, request.digest)), _stamp(record)
        if decision.request_id is None and asked is not None and stamp is not None and stamp < asked:
            # no id, and published before the plan's last request: the answer to an earlier parking, or the
            # decision a step parked again after (a crash cut its release short and a guard trips now) already used
            continue
        mismatch = other_request(None, request.request_id) if decision.request_id != request.request_id else None
        judged = _judge(record, decision, request, keys, now, mismatch)
        if isinstance(judged, Answer):
            answers.setdefault((decision.incident, decision.step), judged)  # the engine applies the first
        else:
            refused.setdefault((decision.incident, decision.step), []).append(judged)
    out = []
    for at, request in latest.items():
        item = Pending(request=request, request_verified=True if read.checked else None, answer=answers.get(at),
                       expired=request.expires_at <= now, refused=refused.get(at, []))
        waiting = item.answer is None or item.answer.lapsed
        if (waiting or include_answered) and (not item.expired or include_expired):
            out.append(item)
    return out
