"""Which approvals a fleet still waits on, from its published requests and decisions (responder/engine/pending.py):
requests trusted only when a replica signed them, decisions only when the engine would accept them (for the request
they name, when they name one)."""

from __future__ import annotations

from datetime import datetime, timedelta

from responder.auth import ApproverKeys, signed_headers
from responder.engine.approvals import other_request
from responder.engine.pending import latest_requests, pending
from responder.models.approval import ApprovalDecision
from responder.models.event import RawRecord
from responder.models.signed import SIGNED_MAX_BYTES
from responder.timeline.checkpoint import Signer, generate_keypair
from tests.pending_kit import CHECKER, NOW, pending_request

KEYS = ApproverKeys({"k1": "secret", "k2": "bob-secret"}, identities={"k1": "alice", "k2": "bob"})
FIRST, SECOND = "1" * 32, "2" * 32  # two parkings' request ids


def _decision(digest: str = "a" * 64, *, by: str = "alice", key: tuple[str, str] | None = ("k1", "secret"),
              published: datetime = NOW, request_id: str | None = None) -> RawRecord:
    decision = ApprovalDecision(incident="inc-1", step="revoke", decision="approve", by=by, digest=digest,
                                issued_at=NOW, expires_at=NOW + timedelta(minutes=5), request_id=request_id)
    value = decision.canonical()
    headers = tuple(signed_headers(key[0], key[1].encode(), value)) if key else ()
    return RawRecord(topic="dec", value=value, headers=headers, timestamp_ms=int(published.timestamp() * 1000))


def test_a_request_with_no_decision_waits():
    """One signed request and no decision: it is listed as verified, not expired, with no answer."""
    [item] = pending(latest_requests([pending_request()], CHECKER), [], KEYS, NOW)
    assert (item.request.step, item.answer, item.expired, item.request_verified) == ("revoke", None, False, True)


def test_the_latest_request_of_a_step_counts():
    """A step re-published (escalated, with a new plan) is listed once, as its latest request."""
    requests = [pending_request("a" * 64), pending_request("b" * 64, escalated=True)]
    [item] = pending(latest_requests(requests, CHECKER), [], KEYS, NOW)
    assert (item.request.digest, item.request.escalated) == ("b" * 64, True)


def test_a_request_not_signed_by_a_replica_is_refused():
    """With the replicas' public key, a later unsigned or other-key request is refused and counted."""
    stranger = Signer.from_text(generate_keypair()[0])
    records = [pending_request(), pending_request(target="AKIA-BENIGN", signer=None),
               pending_request(target="AKIA-BENIGN", signer=stranger)]
    found = latest_requests(records, CHECKER)
    assert found.refused == 2
    assert found.latest[("inc-1", "revoke")].target == "AKIA1"
    [item] = pending(latest_requests(records, CHECKER), [], KEYS, NOW)
    assert item.request.target == "AKIA1"
    assert latest_requests(records, None).latest[("inc-1", "revoke")].target == "AKIA-BENIGN"  # nothing to check with


def test_an_accepted_decision_for_the_digest_answers_it():
    """alice's decision, signed with her key and naming the digest, answers the request (listed with --all only)."""
    assert pending(latest_requests([pending_request()], CHECKER), [_decision()], KEYS, NOW) == []
    [item] = pending(latest_requests([pending_request()], CHECKER), [_decision()], KEYS, NOW, include_answered=True)
    assert item.answer is not None
    assert (item.answer.decision, item.answer.by, item.answer.verified) == ("approve", "alice", True)


def test_decisions_the_engine_would_refuse_do_not_hide_a_request():
    """Forged, unsigned, non-approver, impersonated or expired decisions are listed with why; the request waits."""
    decisions = [_decision(key=("k1", "wrong")), _decision(key=None), _decision(by="bob", key=("k2", "bob-secret")),
                 _decision(by="alice", key=("k2", "bob-secret")), _decision(published=NOW + timedelta(minutes=9)),
                 _decision("c" * 64)]
    [item] = pending(latest_requests([pending_request()], CHECKER), decisions, KEYS, NOW)
    assert item.answer is None
    assert len(item.refused) == 5
    assert any("not an approver" in why for why in item.refused)
    assert any("belongs to 'bob'" in why for why in item.refused)
    assert any("expired" in why for why in item.refused)


def test_a_decision_from_before_the_request_answers_nothing():
    """A decision published before its plan was first requested (an earlier parking of the same plan) is ignored."""
    assert len(pending(latest_requests([pending_request()], CHECKER), [_decision(published=NOW - timedelta(minutes=1))],
                       KEYS, NOW)) == 1


def test_a_step_parked_again_after_its_decision_is_listed_as_waiting():
    """A plan requested again after its decision is listed as waiting: the earlier decision answers nothing."""
    again = pending_request()
    again = RawRecord(topic="req", value=again.value, headers=again.headers,
                      timestamp_ms=int((NOW + timedelta(minutes=2)).timestamp() * 1000))
    earlier = _decision(published=NOW + timedelta(minutes=1))
    [item] = pending(latest_requests([pending_request(), again], CHECKER), [earlier], KEYS, NOW + timedelta(minutes=3))
    assert item.answer is None
    assert pending(latest_requests([pending_request()], CHECKER), [earlier], KEYS, NOW + timedelta(minutes=3)) == []


def test_a_decision_published_before_an_escalation_of_its_request_still_answers_it():
    """A decision published before an escalation of its request still answers that request."""
    escalated = pending_request(escalated=True, minutes=60)
    escalated = RawRecord(topic="req", value=escalated.value, headers=escalated.headers,
                          timestamp_ms=int((NOW + timedelta(minutes=2)).timestamp() * 1000))
    earlier = _decision(published=NOW + timedelta(minutes=1))
    later = NOW + timedelta(minutes=3)
    assert pending(latest_requests([pending_request(), escalated], CHECKER), [earlier], KEYS, later) == []


def test_a_parking_after_an_escalation_with_an_earlier_deadline_is_still_a_new_parking():
    """A step parked again after an escalation, with an earlier deadline, is a new parking earlier decisions miss."""
    def at(record: RawRecord, minutes: int) -> RawRecord:
        return RawRecord(topic="req", value=record.value, headers=record.headers,
                         timestamp_ms=int((NOW + timedelta(minutes=minutes)).timestamp() * 1000))

    requests = [pending_request(), at(pending_request(escalated=True, minutes=60), 2),
                at(pending_request(minutes=40), 4)]
    [item] = pending(latest_requests(requests, CHECKER), [_decision(published=NOW + timedelta(minutes=3))], KEYS,
                     NOW + timedelta(minutes=5))
    assert item.answer is None


def test_an_answer_that_has_expired_by_now_does_not_hide_the_request():
    """An accepted decision now past its expiry is shown with its request, which stays listed as waiting."""
    [item] = pending(latest_requests([pending_request()], CHECKER), [_decision()], KEYS, NOW + timedelta(minutes=6))
    assert item.answer is not None
    assert item.answer.lapsed


def test_without_keys_a_decision_is_shown_unverified():
    """With no approval keys to check signatures, a decision answers the request but says it was not verified."""
    [item] = pending(latest_requests([pending_request()]), [_decision(key=("k1", "wrong"))], None, NOW,
                     include_answered=True)
    assert item.answer is not None
    assert item.answer.verified is None
    assert item.request_verified is None


def test_an_expired_request_is_listed_only_when_asked():
    """A request past its deadline (the replica applied on_timeout) is left out unless include_expired."""
    assert pending(latest_requests([pending_request(minutes=-1)], CHECKER), [], KEYS, NOW) == []
    [item] = pending(latest_requests([pending_request(minutes=-1)], CHECKER), [], KEYS, NOW, include_expired=True)
    assert item.expired


def test_records_that_are_not_requests_or_decisions_are_skipped():
    """Bytes that do not parse as a request or a decision are skipped, not fatal (a request-shaped one is counted)."""
    junk = RawRecord(topic="x", value=b"{not json")
    assert len(pending(latest_requests([junk, pending_request()], CHECKER), [junk], KEYS, NOW)) == 1
    assert latest_requests([junk], CHECKER).refused == 1


def _at(record: RawRecord, minutes: int) -> RawRecord:
    """The record as published `minutes` after NOW."""
    return record.model_copy(update={"timestamp_ms": int((NOW + timedelta(minutes=minutes)).timestamp() * 1000)})


def test_a_decision_naming_the_requests_id_answers_it_whenever_it_was_published():
    """A decision naming the latest request's id answers it, even stamped before the request (no timestamp guess)."""
    requests = [_at(pending_request(request_id=FIRST), 2)]
    assert pending(latest_requests(requests, CHECKER), [_decision(request_id=FIRST)], KEYS, NOW) == []


def test_a_decision_naming_another_request_answers_nothing_and_is_not_listed():
    """A decision for an earlier parking, published after the new request, neither answers it nor is listed."""
    requests = [pending_request(request_id=FIRST), _at(pending_request(request_id=SECOND), 1)]
    [item] = pending(latest_requests(requests, CHECKER), [_decision(request_id=FIRST, published=NOW + timedelta(
        minutes=2))], KEYS, NOW + timedelta(minutes=3))
    assert (item.request.request_id, item.answer, item.refused) == (SECOND, None, [])


def test_a_decision_naming_no_request_for_one_that_has_an_id_is_refused():
    """A decision with no request id for a request that has one does not hide it; it is listed with the reason."""
    decisions = [_decision(), _decision(key=("k1", "wrong"))]
    [item] = pending(latest_requests([pending_request(request_id=FIRST)], CHECKER), decisions, KEYS, NOW)
    assert item.answer is None
    assert item.refused[0] == f"approve by alice: {other_request(None, FIRST)}"
    assert "names no request" not in item.refused[1]
    [unkeyed] = pending(latest_requests([pending_request(request_id=FIRST)], CHECKER), [_decision()], None, NOW)
    assert (unkeyed.answer, len(unkeyed.refused)) == (None, 1)


def test_a_replayed_older_copy_keeps_the_newer_parkings_request_id():
    """A replayed older request or escalation of a plan leaves the newer parking listed whole with its id."""
    first = pending_request(request_id=FIRST)
    second = pending_request(request_id=SECOND, minutes=50, escalated=True, reasons=("kill_switch: switched off",))
    read = latest_requests([first, second.model_copy(update={"offset": 1}), first.model_copy(update={"offset": 2})],
                           CHECKER)
    found = read.latest[("inc-1", "revoke")]
    assert (found.request_id, found.expires_at, found.escalated) == (SECOND, NOW + timedelta(minutes=50), True)
    assert found.reasons == ["kill_switch: switched off"]  # what the human approving the second is shown
    assert read.plans[("inc-1", "revoke")]["a" * 64].offset == 1  # and where it was read
    escalated_first = pending_request(request_id=FIRST, minutes=60, escalated=True)
    found = latest_requests([first, escalated_first, pending_request(request_id=SECOND, minutes=40), escalated_first],
                            CHECKER).latest[("inc-1", "revoke")]
    assert (found.request_id, found.expires_at, found.escalated) == (SECOND, NOW + timedelta(minutes=40), False)


def test_a_new_parking_with_an_earlier_deadline_than_an_escalation_is_listed_as_it_is():
    """A new request id after an escalation is a new parking listed with its own deadline and id."""
    requests = [pending_request(request_id=FIRST), pending_request(request_id=FIRST, minutes=60, escalated=True),
                pending_request(request_id=SECOND, minutes=40)]
    found = latest_requests(requests, CHECKER).latest[("inc-1", "revoke")]
    assert (found.request_id, found.expires_at, found.escalated) == (SECOND, NOW + timedelta(minutes=40), False)
    assert pending(latest_requests(requests, CHECKER), [_decision(request_id=SECOND)], KEYS, NOW) == []


def test_without_request_ids_the_publication_times_decide_as_before():
    """Without request ids, only a decision published after the plan's last request answers it."""
    requests = [_at(pending_request(), 1)]
    assert pending(latest_requests(requests, CHECKER), [_decision(published=NOW + timedelta(minutes=2))], KEYS,
                   NOW + timedelta(minutes=3)) == []
    [item] = pending(latest_requests(requests, CHECKER), [_decision()], KEYS, NOW + timedelta(minutes=3))
    assert (item.answer, item.refused) == (None, [])


def test_a_replayed_copy_of_an_earlier_parking_does_not_make_its_plan_the_latest():
    """A replayed copy of an earlier parking of a re-planned step leaves the new plan as the step's latest request."""
    first, second = pending_request(request_id=FIRST), pending_request(request_id=SECOND)
    third = pending_request("b" * 64, request_id="c" * 32)
    found = latest_requests([first, second, third, first], CHECKER).latest[("inc-1", "revoke")]
    assert (found.digest, found.request_id) == ("b" * 64, "c" * 32)


def test_a_decision_stamped_out_of_datetime_range_is_judged_by_its_issue_time():
    """`approvals pending` judges a decision with a µs Kafka timestamp by its issue time, not a ValueError."""
    decision = _decision().model_copy(update={"timestamp_ms": int(NOW.timestamp() * 1000) * 1000})
    assert pending(latest_requests([pending_request()], CHECKER), [decision], KEYS, NOW) == []


def test_a_signed_decision_padded_past_the_engines_cap_does_not_answer_the_request():
    """A decision the engine refuses for its size (over SIGNED_MAX_BYTES) leaves its request listed as waiting."""
    value = _decision().value
    padded = value[:-1] + b" " * SIGNED_MAX_BYTES + b"}"
    record = RawRecord(topic="dec", value=padded, headers=tuple(signed_headers("k1", b"secret", padded)),
                       timestamp_ms=int(NOW.timestamp() * 1000))
    [item] = pending(latest_requests([pending_request()], CHECKER), [record], KEYS, NOW)
    assert item.answer is None
