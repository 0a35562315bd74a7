"""Requests signed with a valid key but refused (not granted, expired, claiming an answered id) are bounded as forged
ones are: the first per key and window recorded in full as `operator.refused`, the rest counted into a summary."""

from __future__ import annotations

import uuid

from responder.engine.operator import OPERATOR_REFUSED, Operator
from responder.engine.refusals import FULL_PER_WINDOW
from responder.models.operator import OperatorRequest
from responder.timeline import Recorder
from tests.operator_kit import channel_operator, claiming_request

FLOOD = 50


def signed_by(key: str) -> tuple[bytes, str, str]:
    """A new request (undo inc1 by alice) signed with `key`."""
    return claiming_request(uuid.uuid4().hex, key)


def _refused(op: Operator) -> list[dict[str, object]]:
    return [dict(e.body) for e in op.recorder.entries() if e.kind == OPERATOR_REFUSED]


async def test_a_flood_of_requests_a_key_is_not_granted_costs_bounded_entries_and_fsyncs():
    """A flood of requests from a key not granted their command records 10 in full and the rest in one summary."""
    op = await channel_operator({"ops": ["undo"]})
    counted: list[str] = []
    op.refusals.counted = counted.append
    syncs, seq = op.recorder.syncs, op.recorder.next_seq
    for _ in range(FLOOD):
        reply = await op.handle(*signed_by("viewer"))
        assert reply is not None
        assert not reply.ok
        assert "grants it nothing" in str(reply.error)
    assert op.recorder.next_seq - seq == FULL_PER_WINDOW
    assert op.recorder.syncs - syncs <= FULL_PER_WINDOW
    assert counted == ["refused"] * FLOOD
    op.refusals.close()
    await op.recorder.flush()
    bodies = _refused(op)
    assert len(bodies) == FULL_PER_WINDOW + 1
    assert (bodies[0]["action"], bodies[0]["by"], bodies[0]["key_id"]) == ("undo", "alice", "viewer")
    assert (bodies[-1]["suppressed"], bodies[-1]["key_id"], bodies[-1]["class"]) == (FLOOD - FULL_PER_WINDOW,
                                                                                      "viewer", "refused")
    assert all(e.kind != "operator.requested" for e in op.recorder.entries())


async def test_a_flood_claiming_an_answered_id_is_bounded_and_another_keys_refusal_is_still_recorded():
    """A flood claiming an answered request's id is bounded per key, and another key's refusal is still recorded."""
    op = await channel_operator({"ops": ["undo"], "viewer": ["undo"]})
    value, key_id, sig = signed_by("ops")
    assert (await op.handle(value, key_id, sig)) is not None
    answered = OperatorRequest.model_validate_json(value).id
    for _ in range(FLOOD):
        reply = await op.handle(*claiming_request(answered, "viewer", args={"force": True}))
        assert reply is not None
        assert "already answered another request" in str(reply.error)
    assert (await op.handle(*claiming_request(answered, "ops", args={"force": True}))) is not None
    await op.recorder.flush()
    bodies = _refused(op)
    assert len(bodies) == FULL_PER_WINDOW + 1
    assert bodies[-1]["key_id"] == "ops"


async def test_a_request_refused_for_its_permissions_is_not_run_when_sent_again_after_a_grant():
    """A request refused for its key's permissions is refused again, never run, when sent again after a grant."""
    op = await channel_operator({"ops": []})
    value, key_id, sig = signed_by("ops")
    first = await op.handle(value, key_id, sig)
    assert first is not None
    assert "may not send undo" in str(first.error)
    op.permissions = {"ops": ["undo"]}
    assert await op.handle(value, key_id, sig) == first
    assert all(e.kind != "operator.requested" for e in op.recorder.entries())


async def test_a_request_refused_for_its_permissions_is_not_run_after_a_restart_with_the_grant():
    """After a restart granting the key, a request refused for permissions is answered with its refusal, not run."""
    op = await channel_operator({"ops": []})
    value, key_id, sig = signed_by("ops")
    first = await op.handle(value, key_id, sig)
    assert first is not None
    again = Operator(Recorder(op.recorder.store), op.registry, op.context, keys=op.keys, clock=op.clock,
                     permissions={"ops": ["undo"]})
    again.recover(again.recorder.entries())
    assert await again.handle(value, key_id, sig) == first
    assert all(e.kind != "operator.requested" for e in again.recorder.entries())
    fresh = await again.handle(*signed_by("ops"))
    assert fresh is not None
    assert fresh.ok
