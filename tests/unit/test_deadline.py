"""`within`: a step's timeout armed only at its first suspension, with `asyncio.timeout`'s outcomes."""

from __future__ import annotations

import asyncio

import pytest

from responder.engine.deadline import deadline_in, within


async def _value(pause: float | None, value: int = 7) -> int:
    if pause is not None:
        await asyncio.sleep(pause)
    return value


async def _raise(pause: float | None) -> int:
    if pause is not None:
        await asyncio.sleep(pause)
    raise ValueError("boom")


async def test_a_body_that_never_suspends_schedules_no_timer() -> None:
    """Completing without suspending returns the value and leaves no timer handle on the loop."""
    loop = asyncio.get_running_loop()
    before = len(loop._scheduled)  # type: ignore[attr-defined]
    assert await within(_value(None), deadline_in(30)) == 7
    assert len(loop._scheduled) == before  # type: ignore[attr-defined]


async def test_a_body_that_suspends_and_finishes_in_time_returns_its_value() -> None:
    """A body that suspends but finishes before the deadline returns its value, as under asyncio.timeout."""
    assert await within(_value(0.01, 9), deadline_in(5)) == 9


async def test_a_body_that_outlasts_its_deadline_raises_timeout_error() -> None:
    """A suspended body still running at the deadline is cancelled and TimeoutError raised."""
    with pytest.raises(TimeoutError):
        await within(_value(5), deadline_in(0.02))


async def test_the_deadline_counts_from_before_the_body_started() -> None:
    """A deadline already past when the body first suspends times out at once (it was computed at the start)."""
    deadline = deadline_in(0.01)
    await asyncio.sleep(0.02)
    with pytest.raises(TimeoutError):
        await within(_value(5), deadline)


@pytest.mark.parametrize("pause", [None, 0.01])
async def test_the_body_s_own_error_passes_through(pause: float | None) -> None:
    """An error the body raises (before or after suspending) reaches the caller unchanged."""
    with pytest.raises(ValueError, match="boom"):
        await within(_raise(pause), deadline_in(5))


async def test_an_outside_cancellation_stays_a_cancellation() -> None:
    """Cancelling the awaiting task before the deadline raises CancelledError, not TimeoutError."""
    task = asyncio.create_task(_wrapped())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def _wrapped() -> int:
    return await within(_value(5), deadline_in(30))
