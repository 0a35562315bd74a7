"""The alert loop never waits between two polls for the batch gate or the changelog: an eviction due while the gate
is held (a decision whose guard reads are slow) and an idle flush waiting on the changelog barrier run beside it
(responder/service/chores.py), so the replica keeps polling within `max_poll_interval_ms`; a chore's failure still
stops the service."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from responder.errors_kafka import ChangelogWriteTimedOut
from responder.models.event import RawRecord
from responder.service import Service
from responder.settings import Settings
from tests.consumer_kit import AssignmentConsumer
from tests.fakes import FakeIam


class _Polls:
    """Stands in for the alert consumer's poll: counts the polls, each returning nothing after a short wait."""

    def __init__(self) -> None:
        self.count = 0

    async def __call__(self, timeout_ms: int = 200) -> dict[Any, list[RawRecord]]:
        self.count += 1
        await asyncio.sleep(0.01)
        return {}

    async def reach(self, n: int) -> None:
        """Wait until `n` more polls were made (TimeoutError after 2 s: the loop is stuck)."""
        target = self.count + n
        async with asyncio.timeout(2):
            while self.count < target:
                await asyncio.sleep(0.01)


def _service(tmp_path: Path) -> tuple[Service, _Polls, Any]:
    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", topics=["a"])
    service = Service(settings, aws=FakeIam(), runbooks=[])
    real = service.ingest.consumer
    service.ingest.consumer = AssignmentConsumer()  # type: ignore[assignment]
    polls = _Polls()
    service.ingest.poll = polls  # type: ignore[method-assign]
    return service, polls, real


async def _end(service: Service, loop: asyncio.Task[None], real: Any) -> None:
    service._stop.set()
    try:
        async with asyncio.timeout(5):
            await loop
    finally:
        await _closed(service, real)


async def _closed(service: Service, real: Any) -> None:
    """Give the service its real consumer back and close what it built."""
    service.ingest.consumer = real
    service.recorder.close()
    await service.close_unstarted()


async def test_polls_go_on_while_a_due_eviction_waits_for_the_gate(tmp_path: Path) -> None:
    """The loop polls on while a due eviction waits for the held gate; the eviction runs once the gate is freed."""
    service, polls, real = _service(tmp_path)
    evicted = asyncio.Event()
    service.engine.evict = lambda: (evicted.set(), [])[1]  # type: ignore[method-assign]
    async with service._lock:  # held before the loop starts, and for 5 polls after
        service._evicted_at = float("-inf")  # due at the first turn
        loop = asyncio.create_task(service._alerts_loop())
        await polls.reach(5)
        assert not evicted.is_set()
    async with asyncio.timeout(2):
        await evicted.wait()
    await _end(service, loop, real)


async def test_polls_go_on_while_the_idle_flush_waits_for_the_changelog(tmp_path: Path) -> None:
    """An idle flush waiting on the changelog runs beside the loop, which polls on and starts no second flush."""
    service, polls, real = _service(tmp_path)
    go, flushes = asyncio.Event(), []

    async def flush() -> None:
        flushes.append(1)
        await go.wait()

    service.recorder.flush = flush  # type: ignore[method-assign]
    loop = asyncio.create_task(service._alerts_loop())
    await polls.reach(5)
    assert flushes == [1]
    go.set()
    await polls.reach(3)
    assert len(flushes) > 1
    await _end(service, loop, real)


async def test_a_chore_that_failed_stops_the_loop(tmp_path: Path) -> None:
    """An idle flush whose changelog write ran out of its deadline is raised at the loop's next turn, stopping it."""
    service, _, real = _service(tmp_path)

    async def flush() -> None:
        raise ChangelogWriteTimedOut("changelog c[0]: not acknowledged within its deadline")

    service.recorder.flush = flush  # type: ignore[method-assign]
    try:
        with pytest.raises(ChangelogWriteTimedOut):
            async with asyncio.timeout(5):
                await service._alerts_loop()
    finally:
        await _closed(service, real)


async def test_a_chore_failure_behind_another_error_is_logged(tmp_path: Path) -> None:
    """A failed eviction waiting to be raised when the loop fails otherwise is logged as `chore_failed`."""
    service, _, real = _service(tmp_path)
    evicted = asyncio.Event()

    async def evict() -> None:
        evicted.set()
        raise ChangelogWriteTimedOut("changelog c[0]: the eviction's tombstones were not acknowledged")

    async def polled(*_: Any, **__: Any) -> dict[Any, list[RawRecord]]:
        await evicted.wait()
        await asyncio.sleep(0)
        service._rebalance_error = RuntimeError("a rebalance failed")
        return {}

    service._evict = evict  # type: ignore[method-assign]
    service._evicted_at = float("-inf")
    service._polled = polled  # type: ignore[method-assign]
    try:
        with capture_logs() as logs, pytest.raises(RuntimeError, match="a rebalance failed"):
            async with asyncio.timeout(5):
                await service._alerts_loop()
    finally:
        await _closed(service, real)
    [failed] = [e for e in logs if e["event"] == "chore_failed"]
    assert failed["chore"] == "evict"
    assert "ChangelogWriteTimedOut" in failed["error"]
