"""The operator's memory of handled request ids is bounded by the requests' own expiry: months of requests keep it
flat, and a request sent again once forgotten is refused as expired, never run again."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from responder.auth import signed_headers
from responder.engine.answered import FORGET_MARGIN_S
from responder.engine.operator import OPERATOR_REQUESTED, Operator
from responder.models.operator import OperatorRequest
from tests.operator_kit import SECRET, WallClock, memory_operator

TTL = 60.0
DAY = 86_400.0


def _request(clock: WallClock, key: str = "ops") -> tuple[bytes, str, str]:
    at = datetime.fromtimestamp(clock.now, UTC)
    value = OperatorRequest.model_validate({"id": uuid.uuid4().hex, "action": "undo", "by": "alice",
                                            "incident": "inc1", "issued_at": at,
                                            "expires_at": at + timedelta(seconds=TTL)}).canonical()
    [(_, key_id), (_, sig)] = signed_headers(key, SECRET, value)
    return value, key_id.decode(), sig.decode()


async def _run_then_forget(clock: WallClock) -> tuple[Operator, tuple[bytes, str, str]]:
    """An operator that ran one request, then handled another past that one's expiry and the margin (forgot it)."""
    op = await memory_operator(clock)
    first = _request(clock)
    reply = await op.handle(*first)
    assert reply is not None
    assert reply.ok
    clock.now += TTL + FORGET_MARGIN_S + 1
    await op.handle(*_request(clock))  # any handling forgets what expired
    assert OperatorRequest.model_validate_json(first[0]).id not in op.answered
    return op, first


async def _refused_as_expired(op: Operator, first: tuple[bytes, str, str]) -> None:
    """`first`, sent again, is refused as expired and was run once: the timeline holds two distinct requests run."""
    again = await op.handle(*first)
    assert again is not None
    assert not again.ok
    assert "expired" in str(again.error)
    await op.recorder.flush()
    ran = [e.body["id"] for e in op.recorder.entries() if e.kind == OPERATOR_REQUESTED]
    assert len(ran) == len(set(ran)) == 2  # the first request and the later one, not the first again


def _held(op: Operator) -> int:
    return len(set(op.answered) | set(op.done) | set(op.started))


async def test_requests_over_simulated_days_keep_the_operators_memory_flat():
    """Requests over simulated days keep the operator's held ids within one request lifetime plus the margin."""
    clock = WallClock()
    op = await memory_operator(clock)
    peak = 0
    for i in range(2_000):
        clock.now += 10 * DAY / 2_000
        reply = await op.handle(*_request(clock, "ops" if i % 10 == 0 else "viewer"))
        assert reply is not None
        peak = max(peak, _held(op))
    window = (TTL + FORGET_MARGIN_S) / (10 * DAY / 2_000)
    assert peak <= window + 2
    assert peak < 10


async def test_a_request_sent_again_after_it_was_forgotten_is_refused_as_expired_not_run():
    """A completed request sent again after its id was forgotten is refused as expired, never run again."""
    clock = WallClock()
    op, first = await _run_then_forget(clock)
    await _refused_as_expired(op, first)


async def test_a_restart_remembers_only_requests_not_yet_expired():
    """A restart reading the timeline remembers only the ids of requests not yet expired."""
    clock = WallClock()
    op = await memory_operator(clock)
    old = _request(clock)
    assert await op.handle(*old) is not None
    clock.now += DAY
    recent = _request(clock)
    first = await op.handle(*recent)
    assert first is not None
    again = await memory_operator(clock, op.recorder.store)
    assert set(again.answered) == {OperatorRequest.model_validate_json(recent[0]).id}
    assert await again.handle(*recent) == first


async def test_a_forgotten_request_is_not_run_again_when_the_wall_clock_steps_back_past_the_margin():
    """A forgotten request stays refused as expired when the wall clock steps back past the margin."""
    clock = WallClock()
    op, first = await _run_then_forget(clock)
    clock.now -= TTL + FORGET_MARGIN_S + 30  # before the first request's expiry again
    await _refused_as_expired(op, first)
