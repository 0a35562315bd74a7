"""Coalesced offset commits (responder/ingest/commits.py): flushed before committed, at most every interval."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from responder.errors import TimelineError
from responder.ingest.commits import OffsetCommits


class Broker:
    """Records, in order, the flushes and the commits the committer makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[Any, int]]] = []
        self.flush_fails = False
        self.gate: asyncio.Event | None = None

    async def flush(self) -> None:
        if self.flush_fails:
            raise TimelineError("disk gone")
        self.calls.append(("flush", {}))

    async def commit(self, offsets: Mapping[Any, int]) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.calls.append(("commit", dict(offsets)))


def _committer(broker: Broker, now: list[float], interval: float = 0.1) -> OffsetCommits:
    return OffsetCommits(broker.commit, broker.flush, interval=interval, clock=lambda: now[0])


async def _started(broker: Broker, offsets: dict[Any, int]) -> OffsetCommits:
    """A committer whose interval has passed, with `offsets` handled and its background commit started."""
    now = [0.0]
    commits = _committer(broker, now)
    now[0] = 1.0
    commits.handled(offsets)
    commits.tick()
    await asyncio.sleep(0.01)
    return commits


async def test_offsets_are_committed_after_a_flush_and_keep_the_highest() -> None:
    """A commit flushes first, then commits each partition's highest handled offset, in one request."""
    broker, now = Broker(), [0.0]
    commits = _committer(broker, now)
    commits.handled({"p0": 5, "p1": 3})
    commits.handled({"p0": 9})
    commits.handled({"p0": 7})  # never moves an offset back
    await commits.commit()
    assert broker.calls == [("flush", {}), ("commit", {"p0": 9, "p1": 3})]
    assert commits.pending() == {}
    await commits.commit()  # nothing handled since: no flush, no request
    assert len(broker.calls) == 2


async def test_tick_commits_in_the_background_only_once_the_interval_passed() -> None:
    """Before the interval nothing is committed; after it, one background commit takes what was handled."""
    broker, now = Broker(), [0.0]
    commits = _committer(broker, now)
    commits.handled({"p0": 1})
    now[0] = 0.05
    commits.tick()
    await asyncio.sleep(0)
    assert broker.calls == []
    now[0] = 0.1
    commits.tick()
    await asyncio.sleep(0.01)
    assert broker.calls == [("flush", {}), ("commit", {"p0": 1})]
    commits.handled({"p0": 2})
    now[0] = 0.15
    commits.tick()  # the interval counts from the last commit
    await asyncio.sleep(0.01)
    assert len(broker.calls) == 2


async def test_a_chunk_handled_during_a_commit_stays_pending() -> None:
    """An offset that passed the one being committed is committed next time, not dropped."""
    broker = Broker()
    broker.gate = asyncio.Event()
    commits = await _started(broker, {"p0": 4})  # flushed; the commit request is in flight
    commits.handled({"p0": 8})
    broker.gate.set()
    await asyncio.sleep(0.01)
    assert commits.pending() == {"p0": 8}
    await commits.close()
    assert [c for c in broker.calls if c[0] == "commit"] == [("commit", {"p0": 4}), ("commit", {"p0": 8})]


async def test_revoked_partitions_are_committed_alone_and_assigned_ones_forgotten() -> None:
    """commit(partitions) commits only those; forget() drops offsets marked under an earlier assignment."""
    broker, now = Broker(), [0.0]
    commits = _committer(broker, now)
    commits.handled({"p0": 4, "p1": 6, "p2": 2})
    await commits.commit(["p1"])
    assert broker.calls == [("flush", {}), ("commit", {"p1": 6})]
    commits.forget(["p2"])
    assert commits.pending() == {"p0": 4}


async def test_a_failed_flush_commits_nothing_and_the_next_tick_raises_it() -> None:
    """A timeline that cannot be made durable is never passed by a commit; its error stops the poll loop."""
    broker = Broker()
    broker.flush_fails = True
    commits = await _started(broker, {"p0": 3})
    with pytest.raises(TimelineError):
        commits.tick()
    assert broker.calls == []
    assert commits.pending() == {"p0": 3}


async def test_cancel_commits_nothing() -> None:
    """A failed service stops its committer without committing what is pending."""
    broker = Broker()
    broker.gate = asyncio.Event()
    commits = await _started(broker, {"p0": 3})
    await commits.cancel()
    assert [c for c in broker.calls if c[0] == "commit"] == []


async def test_close_gives_up_on_a_timeline_that_never_becomes_durable() -> None:
    """A stop does not hang on a stalled disk: after its deadline the offsets are left uncommitted."""
    broker, now = Broker(), [0.0]
    stalled = asyncio.Event()

    async def never() -> None:
        await stalled.wait()

    commits = OffsetCommits(broker.commit, never, interval=0.1, clock=lambda: now[0])
    commits.handled({"p0": 3})
    await commits.close(deadline=0.05)
    assert broker.calls == []
    assert commits.pending() == {"p0": 3}
