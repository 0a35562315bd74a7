"""Intake limits and delivery bookkeeping, below the HTTP layer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from responder.intake.deliveries import Deliveries
from responder.intake.limits import RateLimiter, check_depth, read_body
from responder.intake.problems import Problem


async def test_body_limit_stops_reading_a_huge_chunked_body() -> None:
    """A 1 GB body without Content-Length is refused after the limit; the rest is never read."""
    pulled = 0

    async def gigabyte() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(16 * 1024):  # 16k chunks of 64 KiB = 1 GiB
            pulled += 1
            yield b"x" * 65536

    with pytest.raises(Problem) as refused:
        await read_body(gigabyte(), None, 1024 * 1024, 5.0)
    assert refused.value.status == 413
    assert pulled == 17  # 16 chunks fit in 1 MiB, the 17th crosses it


async def test_slow_client_times_out_with_408() -> None:
    """A body that trickles in slower than the read timeout is 408."""

    async def trickle() -> AsyncIterator[bytes]:
        while True:
            await asyncio.sleep(0.05)
            yield b"x"

    with pytest.raises(Problem) as refused:
        await read_body(trickle(), None, 1024, 0.2)
    assert refused.value.status == 408


def test_depth_limit_counts_containers() -> None:
    """A document exactly at the limit passes; one level more is refused with 400."""
    at_limit: object = 1
    for _ in range(4):
        at_limit = [at_limit]
    check_depth(at_limit, 4)
    with pytest.raises(Problem) as refused:
        check_depth([at_limit], 4)
    assert refused.value.status == 400


def test_rate_limiter_refills_over_time() -> None:
    """After the burst is spent, tokens come back at `rate` per second."""
    now = [0.0]
    bucket = RateLimiter(rate=2.0, burst=2, clock=lambda: now[0])
    bucket.take()
    bucket.take()
    with pytest.raises(Problem) as refused:
        bucket.take()
    assert refused.value.headers["Retry-After"] == "1"
    now[0] = 0.5
    bucket.take()


async def test_concurrent_redelivery_waits_for_the_first_outcome() -> None:
    """A redelivery arriving while the first is in flight is a duplicate once the first is acknowledged."""
    deliveries = Deliveries(ttl=60, max_entries=10)
    assert await deliveries.claim("k")
    second = asyncio.create_task(deliveries.claim("k"))
    await asyncio.sleep(0.01)
    assert not second.done()
    deliveries.done("k", None, ok=True)
    assert await second is False


async def test_failed_delivery_is_not_remembered() -> None:
    """When the broker did not acknowledge, the retry is produced (claim returns True again)."""
    deliveries = Deliveries(ttl=60, max_entries=10)
    assert await deliveries.claim("k")
    deliveries.done("k", None, ok=False)
    assert await deliveries.claim("k")


async def test_deliveries_are_bounded_and_expire() -> None:
    """The store keeps at most `max_entries`, oldest evicted first, and forgets after the TTL."""
    now = [0.0]
    deliveries = Deliveries(ttl=10, max_entries=2, clock=lambda: now[0])
    for key in ("a", "b", "c"):
        assert await deliveries.claim(key)
        deliveries.done(key, None, ok=True)
    assert len(deliveries) == 2
    assert not deliveries.seen("a")
    assert deliveries.seen("c")
    now[0] = 11
    assert not deliveries.seen("c")
