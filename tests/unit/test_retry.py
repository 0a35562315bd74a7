"""The retry policy: transient errors retried with backoff, permanent ones never, attempts bounded."""

from __future__ import annotations

import pytest

from responder.actuators.retry import with_retries
from responder.errors import PermanentActuationError, TransientActuationError


def _flaky(failures: int, exc: Exception):
    calls = {"n": 0}

    async def fn() -> str:
        calls["n"] += 1
        if calls["n"] <= failures:
            raise exc
        return "ok"

    return fn, calls


async def test_transient_failures_are_retried_until_success():
    """Two throttled attempts are followed by a successful third."""
    fn, calls = _flaky(2, TransientActuationError("Throttling", code="Throttling"))
    assert await with_retries(fn, attempts=4, deadline=10, initial=0.001) == "ok"
    assert calls["n"] == 3


async def test_exhausted_retries_raise_the_transient_error():
    """With more failures than attempts the last transient error is raised after exactly `attempts` calls."""
    fn, calls = _flaky(10, TransientActuationError("Throttling", code="Throttling"))
    with pytest.raises(TransientActuationError):
        await with_retries(fn, attempts=3, deadline=10, initial=0.001)
    assert calls["n"] == 3


async def test_permanent_errors_are_not_retried():
    """AccessDenied-like errors fail on the first call."""
    fn, calls = _flaky(1, PermanentActuationError("AccessDenied", code="AccessDenied"))
    with pytest.raises(PermanentActuationError):
        await with_retries(fn, attempts=5, deadline=10, initial=0.001)
    assert calls["n"] == 1


async def test_a_long_deadline_spreads_the_retries_past_a_60s_throttle(monkeypatch):
    """10 retries with a 300 s deadline outlast 60 s of throttling (at a fixed 5 s cap they were spent in ~40 s)."""
    import asyncio

    now = {"t": 0.0}
    real_sleep = asyncio.sleep

    async def fake_sleep(seconds: float) -> None:
        now["t"] += seconds
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    calls = {"n": 0}

    async def throttled_for_60s() -> str:
        calls["n"] += 1
        if now["t"] < 60.0:
            raise TransientActuationError("SlowDown", code="SlowDown")
        return "ok"

    assert await with_retries(throttled_for_60s, attempts=11, deadline=300, initial=0.2) == "ok"
    assert calls["n"] <= 11
