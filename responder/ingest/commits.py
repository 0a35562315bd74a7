"""Offset commits coalesced over `kafka_commit_interval_ms`, as Kafka Streams' `commit.interval.ms` does.

A lane that has handled a chunk only *marks* its offsets (`handled`); a commit, at most every interval, first makes
the timeline durable (`flush`, which covers every entry appended before it is called, so every entry of every
record up to the marked offsets) and then commits the marked offsets in one request. The lanes no longer wait
for an offset commit (a broker round trip, and work for the broker) after each chunk, nor for a second fsync
of their own: the next chunk's intent flush or the commit's flush makes the results durable.

Delivery is unchanged: at least once. A committed offset never passes a record whose entries are not durable.
A crash redelivers at most the records handled since the last commit (an interval's worth, not one chunk's);
their step keys are already on the timeline, so the engine records them again and acts on none twice, and an
intent without a result is resolved with `verify()` as before. A partition revoked is committed (what this
member handled of it) before it leaves, and a graceful stop commits everything handled (`close`).

An interval of 0 keeps the old behaviour: the service flushes and commits after every chunk itself. Transactions
mode (responder/ingest/transactions.py) commits each chunk's changelog records and offsets in one transaction,
whatever the interval.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import structlog

from responder.bounds import DRAIN_DEADLINE

log = structlog.get_logger(__name__)

Commit = Callable[[Mapping[Any, int]], Awaitable[None]]
Flush = Callable[[], Awaitable[None]]


class OffsetCommits:
    """The offsets handled and not yet committed, committed together at most every `interval` seconds."""

    def __init__(self, commit: Commit, flush: Flush, *, interval: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._commit, self._flush, self.interval, self.clock = commit, flush, interval, clock
        self._pending: dict[Any, int] = {}  # partition -> the next offset to read, every record before it handled
        self._last = clock()
        self._lock = asyncio.Lock()  # one commit at a time: offsets reach the broker in order
        self._task: asyncio.Task[None] | None = None
        self.commits = 0

    def pending(self) -> dict[Any, int]:
        """The offsets handled and not committed yet."""
        return dict(self._pending)

    def handled(self, offsets: Mapping[Any, int]) -> None:
        """Every record of these partitions before these offsets is handled (its entries appended)."""
        for tp, offset in offsets.items():
            if offset > self._pending.get(tp, -1):
                self._pending[tp] = offset

    def tick(self) -> None:
        """Called by the poll loop: start a commit in the background when one is due; raise a failed one's error."""
        task = self._task
        if task is not None and task.done():
            self._task = None
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]  # a timeline or broker failure stops the service
        if self._task is None and self._pending and self.clock() - self._last >= self.interval:
            self._task = asyncio.create_task(self.commit(), name="offset commit")

    async def commit(self, partitions: Iterable[Any] | None = None) -> None:
        """Make the timeline durable, then commit the offsets handled (of `partitions` only, when given)."""
        async with self._lock:
            wanted = None if partitions is None else set(partitions)
            take = {tp: off for tp, off in self._pending.items() if wanted is None or tp in wanted}
            if partitions is None:
                self._last = self.clock()
            if not take:
                return
            await self._flush()  # covers every entry appended before now: those of every record up to `take`
            await self._commit(take)
            self.commits += 1
            for tp, offset in take.items():
                if self._pending.get(tp) == offset:  # not passed by a chunk handled meanwhile
                    del self._pending[tp]

    def forget(self, partitions: Iterable[Any]) -> None:
        """Partitions newly assigned: an offset marked under an earlier assignment is not committed over theirs."""
        for tp in partitions:
            self._pending.pop(tp, None)

    async def close(self, deadline: float = DRAIN_DEADLINE) -> None:
        """Graceful stop (after the lanes drained): wait for a commit under way, then commit what is left.

        A timeline that cannot be made durable (a stalled disk) would hold the stop for ever: after `deadline`
        seconds the commit is abandoned, and its records are redelivered to the next owner."""
        try:
            async with asyncio.timeout(deadline):
                if self._task is not None:
                    task, self._task = self._task, None
                    await task
                await self.commit()
        except TimeoutError:
            log.warning("offset_commit_abandoned", deadline_s=deadline, partitions=len(self._pending),
                        detail="the timeline did not become durable in time: the records are redelivered")

    async def cancel(self) -> None:
        """Stop without committing (the service failed): a commit under way is cancelled."""
        if self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
