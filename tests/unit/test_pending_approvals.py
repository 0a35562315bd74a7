"""Which approvals a fleet still waits on, from its published requests and decisions (responder/engine/pending.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from responder.auth import KeyRing, signed_headers
from responder.engine.pending import latest_requests, pending
from responder.models.approval import ApprovalDecision, ApprovalRequest
from responder.models.event import RawRecord

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
KEYS = KeyRing({"k1": "secret"})


def _request(digest: str = "a" * 64, *, minutes: int = 30, escalated: bool = False, target: str = "AKIA1",
             secret: str | None = "secret") -> RawRecord:
    request = ApprovalRequest(incident="inc-1", step="revoke", runbook="rb", actuator="aws.iam.deactivate_access_key",
                              target=target, params={}, digest=digest, reasons=["approval required"],
                              approvers=["alice"], expires_at=NOW + timedelta(minutes=minutes), on_timeout="deny",
                              escalated=escalated)
    value = orjson.dumps(request.model_dump(mode="json"))
    headers = tuple(signed_headers("k1", secret.encode(), value)) if secret else ()
    return RawRecord(topic="req", value=value, headers=headers)


def _decision(digest: str = "a" * 64, secret: str | None = "secret") -> RawRecord:
    decision = ApprovalDecision(incident="inc-1", step="revoke", decision="approve", by="alice", digest=digest,
                                issued_at=NOW, expires_at=NOW + timedelta(minutes=5))
    value = decision.canonical()
    headers = tuple(signed_headers("k1", secret.encode(), value)) if secret else ()
    return RawRecord(topic="dec", value=value, headers=headers)


def test_a_request_with_no_decision_waits():
    """One request and no decision: it is listed, not expired, with no answer."""
    [item] = pending([_request()], [], KEYS, NOW)
    assert (item.request.step, item.answer, item.expired) == ("revoke", None, False)


def test_the_latest_request_of_a_step_counts():
    """A step re-published (escalated, with a new plan) is listed once, as its latest request."""
    [item] = pending([_request("a" * 64), _request("b" * 64, escalated=True)], [], KEYS, NOW)
    assert (item.request.digest, item.request.escalated) == ("b" * 64, True)


def test_a_request_not_signed_by_a_replica_is_refused():
    """With keys, a later request that is unsigned or forged (another target shown for the same digest) is refused
    and counted; the replica's signed request is the one listed."""
    records = [_request(), _request(target="AKIA-BENIGN", secret=None), _request(target="AKIA-BENIGN", secret="x")]
    found = latest_requests(records, KEYS)
    assert found.refused == 2
    assert found.latest[("inc-1", "revoke")].target == "AKIA1"
    [item] = pending(records, [], KEYS, NOW)
    assert item.request.target == "AKIA1"
    assert latest_requests(records, None).latest[("inc-1", "revoke")].target == "AKIA-BENIGN"  # nothing to check


def test_a_verified_decision_for_the_digest_answers_it():
    """A decision signed with a configured key and naming the digest answers the request (listed only with --all)."""
    assert pending([_request()], [_decision()], KEYS, NOW) == []
    [item] = pending([_request()], [_decision()], KEYS, NOW, include_answered=True)
    assert item.answer is not None
    assert (item.answer.decision, item.answer.by, item.answer.verified) == ("approve", "alice", True)


def test_a_forged_or_stale_decision_does_not_hide_a_request():
    """A decision that does not verify, or names another plan's digest, leaves the request waiting."""
    [item] = pending([_request()], [_decision(secret="wrong"), _decision(secret=None), _decision("c" * 64)], KEYS,
                     NOW)
    assert item.answer is None
    assert item.forged == 2


def test_without_keys_a_decision_is_shown_unverified():
    """With no approval keys to check signatures, a decision answers the request but says it was not verified."""
    [item] = pending([_request()], [_decision(secret="wrong")], None, NOW, include_answered=True)
    assert item.answer is not None
    assert item.answer.verified is None


def test_an_expired_request_is_listed_only_when_asked():
    """A request past its deadline (the replica applied on_timeout) is left out unless include_expired."""
    assert pending([_request(minutes=-1)], [], KEYS, NOW) == []
    [item] = pending([_request(minutes=-1)], [], KEYS, NOW, include_expired=True)
    assert item.expired


def test_records_that_are_not_requests_or_decisions_are_skipped():
    """Bytes that do not parse as a request or a decision are skipped, not fatal."""
    junk = RawRecord(topic="x", value=b"{not json")
    assert len(pending([junk, _request()], [junk], KEYS, NOW)) == 1
    assert latest_requests([junk], KEYS).refused == 1
