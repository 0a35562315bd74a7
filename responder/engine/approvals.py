"""Approvals: parked steps, the requests they publish, and the checks a decision must pass.

A step that needs a human is *parked*: `approval.requested` goes on the timeline (with the event, so
a restarted service can resume it) and a request is published to `responder.approvals.requests`.
A decision is accepted only if its HMAC signature verifies under an active approval key, it names a
parked step, carries that step's plan digest and the id of the request it waits on (each parking has its own,
so a decision answers one parking, not whatever parks the same plan later), was not applied already, has not
expired, does not live longer than the maximum decision lifetime, its `by` is the identity the key is bound
to, and that identity is a listed approver (a key bound to no identity satisfies no approver list).

`on_timeout`: `deny` records the step as denied; `approve` runs it (never allowed for destructive
actuators: the loader refuses that); `escalate` re-publishes the request once, marked escalated, with
a fresh deadline, and denies if that one lapses too.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import structlog
from pydantic import ValidationError

from responder.actuators.base import Publisher
from responder.auth import MAX_LIFETIME, ApproverKeys, KeyRing
from responder.errors import ApprovalRefused, BrokerUnavailable, Refusal
from responder.models.approval import REQUESTS_TOPIC, ApprovalDecision, ApprovalRequest
from responder.models.signed import first_problem, too_large
from responder.timeline.checkpoint import Signer
from responder.tracing import propagation

log = structlog.get_logger(__name__)
MAX_DECISION_LIFETIME = MAX_LIFETIME  # seconds, when the keys do not say (`approval_decision_max_lifetime`)
RUNBOOK_APPROVAL = "approval required by the runbook"
"""The reason a step with `approval.required` is parked: the only one a release with no human at hand waives
(`on_timeout: approve` also releases a step held by a quota that cannot be counted yet, to be checked again)."""
TIMED_OUT = "ApprovalTimeout"
"""The `code` of a step denied because its approval timed out: nobody decided, so its failure is escalated (a human's
denial is not: they decided)."""


class MemoryPublisher:
    """Keeps published records in a list (unit tests, dry runs without Kafka)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    async def publish(self, topic: str, key: bytes, value: bytes,
                      headers: Sequence[tuple[str, bytes]] = ()) -> None:
        """Remember the record."""
        self.sent.append((topic, key, value))


@dataclass
class Parked:
    """A step waiting for a decision."""

    incident: str
    step: str
    runbook: str
    actuator: str
    target: str
    params: dict[str, Any]
    digest: str
    reasons: list[str]
    approvers: list[str]
    deadline: float
    on_timeout: str
    event: dict[str, Any]
    escalated: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    trace: str | None = None
    """The trace id of the alert that parked it (on the timeline as the request's `trace_id`/`event_trace_id`)."""
    waived: bool = False
    """Its runbook's own approval was given (a human or its timeout released it) before a guard parked it again: it
    is not asked for again, only the guard's trip is (so a quota that can be counted again takes it up by itself)."""
    unattended: bool = False
    """Released with no human at hand: by its timeout (`on_timeout: approve`), or resumed after a crash cut its release
    short. That waives the runbook's own approval only, so a guard that trips when it runs (a kill switch turned on,
    a quota filled since it was parked) parks it again, for a new decision (one decision releases a step once)."""
    settles: bool = False
    """Released or denied by a decision (or timeout) whose run records its end (`approval.settled`): once the step is
    past, a restart before that end takes up the steps after it. False for a step released before runs recorded
    their end, whose run a restart never takes up again past the step."""
    request_id: str | None = None
    """This parking's id (random, kept through an escalation and a fleet hand-over), which a decision must name; None
    for a step parked before requests had ids, which a decision naming none answers."""
    alone: bool = False
    """An `on_failure` step escalating a failure under another version of its runbook (one replaced while the failed
    step waited): once it is decided, none of its runbook's steps runs after it, `continue` or not (that version never
    matched the event)."""

    def body(self) -> dict[str, Any]:
        """The approval.requested timeline body (everything needed to resume after a restart)."""
        return {"step": self.step, "runbook": self.runbook, "actuator": self.actuator, "target": self.target,
                "params": self.params, "digest": self.digest, "reasons": self.reasons,
                "approvers": self.approvers, "deadline": self.deadline, "on_timeout": self.on_timeout,
                "expires_at": iso(self.deadline), "escalated": self.escalated, "event": self.event,
                **({"waived": True} if self.waived else {}), **({"alone": True} if self.alone else {}),
                **({"request_id": self.request_id} if self.request_id else {})}

    @classmethod
    def from_body(cls, incident: str, body: dict[str, Any]) -> Parked:
        """Rebuild from an approval.requested entry."""
        keys = ("step", "runbook", "actuator", "target", "params", "digest", "reasons", "approvers", "deadline",
                "on_timeout", "event", "escalated")
        trace, request = body.get("event_trace_id") or body.get("trace_id"), body.get("request_id")
        return cls(incident=incident, **{k: body[k] for k in keys}, trace=str(trace) if trace else None,
                   waived=body.get("waived") is True, alone=body.get("alone") is True,
                   request_id=request if isinstance(request, str) else None)

    def request(self) -> ApprovalRequest:
        """The message published to the requests topic."""
        return ApprovalRequest(
            incident=self.incident, step=self.step, runbook=self.runbook, actuator=self.actuator,
            target=self.target, params=self.params, digest=self.digest, reasons=self.reasons,
            approvers=self.approvers, expires_at=datetime.fromtimestamp(self.deadline, UTC),
            on_timeout=self.on_timeout, escalated=self.escalated, request_id=self.request_id,
        )


def iso(epoch: float) -> str:
    """An epoch second as ISO-8601 UTC."""
    return datetime.fromtimestamp(epoch, UTC).isoformat()


REQUEST_KEY_HEADER = "responder-request-key-id"
REQUEST_SIGNATURE_HEADER = "responder-request-signature"
REQUEST_DOMAIN = b"responder approval request v1\n"
"""Prefixed to a request's value before it is signed: a request signature can stand for nothing else the same key
signs (timeline checkpoints, tabletop scorecards)."""


def request_headers(signer: Signer | None, value: bytes) -> list[tuple[str, bytes]]:
    """The headers that sign a published request with the timeline's Ed25519 key (none without one)."""
    if signer is None:
        return []
    return [(REQUEST_KEY_HEADER, signer.key_id.encode()), (REQUEST_SIGNATURE_HEADER,
                                                          signer.sign(REQUEST_DOMAIN + value).encode())]


async def publish_request(publisher: Publisher | None, parked: Parked, topic: str = REQUESTS_TOPIC,
                          signer: Signer | None = None) -> bool:
    """Publish the request, signed with the replica's timeline key (`signer`, Ed25519) when it has one: the
    operator's `approvals pending` and `approve` then trust only requests a replica signed, checked with the
    public key (responder/engine/pending.py). An approver's HMAC key would not do: operators hold those, and
    could then sign requests. False when there is no publisher, or Kafka did not take the request in its deadline
    (BrokerUnavailable, `approval_request_unsent`): the timeline entry still stands and the step stays parked, asked
    again every 30 s (`Decisions.ask_again`), its timeout still reaching a human (`on_timeout: escalate` asks again, a
    denial runs its escalation)."""
    if publisher is None:
        return False
    value = orjson.dumps(parked.request().model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    headers = [(k, v.encode()) for k, v in propagation()] + request_headers(signer, value)
    try:
        await publisher.publish(topic, parked.incident.encode(), value, headers)
    except BrokerUnavailable as exc:
        log.error("approval_request_unsent", step=parked.step, incident=parked.incident, request_id=parked.request_id,
                  topic=topic, error=str(exc), detail="the step stays parked: its timeout reaches a human")
        return False
    return True


def decision_id(value: bytes) -> str:
    """What tells one signed decision from another (its signature covers these bytes): each releases a step once."""
    return hashlib.sha256(value).hexdigest()[:32]


def new_request_id() -> str:
    """A parking's id: random, so no two parkings of a step share one (a decision answers one of them)."""
    return secrets.token_hex(16)


def accept_decision(value: bytes, key_id: str | None, signature: str | None, keys: KeyRing,
                    parked: Callable[[str, str], Parked | None], now: datetime,
                    used: Callable[[str, str], bool] = lambda incident, decision: False,
                    ) -> tuple[ApprovalDecision, Parked]:
    """The decision and the step it releases, or ApprovalRefused saying why not. `used`: whether a decision id
    (`decision_id`) was applied to the incident already."""
    if not keys:
        raise ApprovalRefused("no approval keys are configured: decisions cannot be authenticated",
                             refusal=Refusal.NO_KEYS)
    problem = keys.check(key_id, signature, value)
    if problem:
        raise ApprovalRefused(problem, refusal=problem.refusal)
    if large := too_large(value):  # after the signature check: the refusal says whether a key signed it
        raise ApprovalRefused(f"malformed decision: {large}", refusal=Refusal.MALFORMED)
    try:
        decision = ApprovalDecision.model_validate_json(value)
    except ValidationError as exc:
        raise ApprovalRefused(f"malformed decision: {first_problem(exc, ApprovalDecision)}",
                              refusal=Refusal.MALFORMED) from exc
    found = parked(decision.incident, decision.step)
    if found is None:
        raise ApprovalRefused("no approval is pending for this incident and step", decision,
                              refusal=Refusal.NOT_PENDING)
    if decision.digest != found.digest:
        raise ApprovalRefused("decision is for a different plan (digest mismatch)", decision)
    if used(decision.incident, decision_id(value)):
        raise ApprovalRefused("this decision was applied already: a step parked again needs a new one", decision,
                              refusal=Refusal.REPLAYED)
    if decision.request_id != found.request_id:
        raise ApprovalRefused(other_request(decision.request_id, found.request_id), decision)
    if decision.expired(now):
        raise ApprovalRefused("decision has expired", decision)
    check_identity(decision, key_id, keys, found.approvers, now)
    return decision, found


def other_request(named: str | None, waiting: str | None) -> str:
    """Why a decision that names request `named` does not answer the parking `waiting` (the ids differ)."""
    if waiting is None:
        return (f"decision names request {named}, but the step was parked before requests had ids: decide it "
                "with a decision that names none")
    if named is None:
        return (f"decision names no request: the step waits on request {waiting}, and a decision must name the "
                "request it answers (`responder approve` copies it from the request)")
    return (f"decision answers request {named}, not request {waiting} the step waits on: it was parked again "
            "since, and the new request needs its own decision")


def check_identity(decision: ApprovalDecision, key_id: str | None, keys: KeyRing, approvers: Sequence[str],
                   now: datetime) -> None:
    """ApprovalRefused unless the decision's lifetime is within bounds and its signing key stands for `by`, one of
    `approvers` (when the step names any). Also what `responder approvals pending` applies to a decision it sees."""
    bound = keys if isinstance(keys, ApproverKeys) else ApproverKeys()
    lifetime = bound.max_lifetime if isinstance(keys, ApproverKeys) else MAX_DECISION_LIFETIME
    if decision.expires_at - now > timedelta(seconds=lifetime) or decision.issued_at > now + timedelta(minutes=5):
        raise ApprovalRefused(f"decision lifetime exceeds the maximum of {lifetime:g}s", decision)
    identity = bound.identity(key_id)
    if identity is not None and decision.by != identity:
        raise ApprovalRefused(f"key {key_id!r} belongs to {identity!r}, not {decision.by!r}", decision)
    if not approvers:
        return
    if identity is None:
        raise ApprovalRefused(f"key {key_id!r} is bound to no identity: it cannot stand for an approver "
                              f"({', '.join(approvers)})", decision)
    if identity not in approvers:
        raise ApprovalRefused(f"{identity!r} is not an approver ({', '.join(approvers)})", decision)
