"""A signature header that is not ASCII (any UTF-8 a producer writes) is a bad signature, refused and recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from responder.auth import KEY_ID_HEADER, SIGNATURE_HEADER, ApproverKeys, KeyRing, sign
from responder.engine.pending import latest_requests, pending
from responder.models.approval import ApprovalDecision
from responder.models.event import RawRecord
from tests.kit import WIPE, decision, make_kit
from tests.operator_kit import operator_request, operator_with_all
from tests.pending_kit import CHECKER
from tests.pending_kit import pending_request as published

NOT_ASCII = "é" * 64  # what `errors="replace"` makes of any non-UTF-8 byte is not ASCII either


def test_a_signature_that_is_not_ascii_is_a_bad_signature():
    """KeyRing.check answers why for a non-ASCII signature instead of raising TypeError from compare_digest."""
    ring = KeyRing({"k": "secret"})
    assert "bad signature" in (ring.check("k", NOT_ASCII, b"body") or "")
    assert "bad signature" in (ring.check("k", "\ufffd" + sign(b"secret", b"body")[1:], b"body") or "")


async def test_a_decision_with_a_signature_that_is_not_ascii_is_recorded_rejected(tmp_path):
    """The engine refuses such a decision and records approval.rejected; nothing runs."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny"})
    await kit.send()
    [parked] = kit.engine.state.parked_steps()
    value, key_id, _ = decision(kit, parked.incident, "wipe")
    assert not await kit.engine.decide(value, key_id, NOT_ASCII)
    await kit.engine.recorder.flush()  # a refusal is durable with the next group commit, not alone
    [rejected] = kit.entries("approval.rejected")
    assert "bad signature" in str(rejected["reason"])
    assert kit.wipe.applied == []


async def test_an_operator_request_with_a_signature_that_is_not_ascii_is_recorded_rejected():
    """The operator refuses such a request as operator.rejected, running nothing."""
    op = operator_with_all()
    value, key_id, _ = operator_request()
    assert await op.handle(value, key_id, NOT_ASCII) is None
    await op.recorder.flush()  # a refusal is durable with the next group commit, not alone
    assert [e.kind for e in op.recorder.entries()] == ["operator.rejected"]


def test_pending_lists_a_decision_with_a_signature_that_is_not_ascii_as_refused():
    """`approvals pending` lists such a decision as refused rather than failing on it."""
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    d = ApprovalDecision(incident="inc-1", step="revoke", decision="approve", by="alice", digest="a" * 64,
                         issued_at=now, expires_at=now + timedelta(minutes=5))
    record = RawRecord(topic="dec", value=d.canonical(), timestamp_ms=int(now.timestamp() * 1000),
                       headers=((KEY_ID_HEADER, b"k1"), (SIGNATURE_HEADER, NOT_ASCII.encode())))
    keys = ApproverKeys({"k1": "secret"}, identities={"k1": "alice"})
    [item] = pending(latest_requests([published()], CHECKER), [record], keys, now)
    assert item.answer is None
    assert "bad signature" in item.refused[0]
