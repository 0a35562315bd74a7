"""An operator request's lifetime is capped (`approval_decision_max_lifetime`, 3600 s without approver keys) from its
own `issued_at`, so no request id, run or refused, is held longer than that cap, and a post-dated request is refused
until it is valid, not remembered."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from responder.auth import signed_headers
from responder.engine.answered import FORGET_MARGIN_S
from responder.engine.operator import OPERATOR_REQUESTED, Operator
from responder.models.operator import OperatorRequest
from tests.operator_kit import SECRET, WallClock, memory_operator

CAP = 3600.0
YEAR = 365 * 86_400.0


def _signed(clock: WallClock, key: str, *, issued: float = 0.0, lasts: float = 60.0) -> tuple[bytes, str, str]:
    at = datetime.fromtimestamp(clock.now + issued, UTC)
    value = OperatorRequest.model_validate({"id": uuid.uuid4().hex, "action": "undo", "by": "alice",
                                            "incident": "inc1", "issued_at": at,
                                            "expires_at": at + timedelta(seconds=lasts)}).canonical()
    [(_, key_id), (_, sig)] = signed_headers(key, SECRET, value)
    return value, key_id.decode(), sig.decode()


def _ran(op: Operator) -> list[str]:
    return [str(e.body["id"]) for e in op.recorder.entries() if e.kind == OPERATOR_REQUESTED]


@pytest.mark.parametrize(("key", "lasts"), [("ops", 1.5 * CAP), ("viewer", 10 * YEAR)])
async def test_a_request_valid_for_longer_than_the_cap_is_refused_and_held_no_longer_than_the_cap(key, lasts):
    """A request valid for longer than the cap is refused, never run, its id held no longer than the cap."""
    clock = WallClock()
    op = await memory_operator(clock)
    request = _signed(clock, key, lasts=lasts)
    request_id = OperatorRequest.model_validate_json(request[0]).id
    first = await op.handle(*request)
    assert first is not None
    assert not first.ok
    assert "longer than 3600s" in str(first.error)
    clock.now += CAP + FORGET_MARGIN_S + 1
    await op.handle(*_signed(clock, "ops"))  # any handling forgets what is past its time
    assert request_id not in op.answered
    await op.recorder.flush()
    restarted = await memory_operator(clock, op.recorder.store)
    assert request_id not in restarted.answered
    op.permissions[key] = ["undo"]
    again = await op.handle(*request)
    assert again is not None
    assert not again.ok
    assert "longer than 3600s" in str(again.error)
    await op.recorder.flush()
    assert request_id not in _ran(op)


async def test_a_post_dated_request_is_refused_without_being_remembered_and_runs_once_valid():
    """A request issued over 5 minutes ahead is refused as not yet valid, unremembered, and runs once when valid."""
    clock = WallClock()
    op = await memory_operator(clock)
    request = _signed(clock, "ops", issued=CAP)
    request_id = OperatorRequest.model_validate_json(request[0]).id
    early = await op.handle(*request)
    assert early is not None
    assert not early.ok
    assert "issued in the future" in str(early.error)
    assert request_id not in op.answered
    clock.now += CAP
    valid = await op.handle(*request)
    assert valid is not None
    assert valid.ok
    assert await op.handle(*request) == valid
    await op.recorder.flush()
    assert _ran(op) == [request_id]
