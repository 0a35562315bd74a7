"""Group commit: the recorder's durable half, writing sealed lines with one fsync shared by concurrent flushes.

`GroupCommit` is the base of `responder.timeline.recorder.Recorder`, which seals the entries (chain, clock,
checkpoints) and appends each `(entry, line)` to `_pending`; this half writes them, stalls while the disk refuses
them, awaits the barriers and tells the sinks. One object, so the append path gains no call. The write and fsync
run in the `timeline` thread pool (responder/threadpools.py), which nothing else uses: AWS calls or pages that
hang cannot keep an entry from becoming durable.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import structlog

from responder.errors import TimelineError
from responder.models.timeline import TimelineEntry
from responder.threadpools import TIMELINE, pool, run_in
from responder.timeline.checkpoint import Signer
from responder.timeline.store import TimelineStore

log = structlog.get_logger(__name__)


class DurableSink(Protocol):
    """Told about entries once they are durable (archive, Kafka mirror); must not block."""

    def accept(self, items: Sequence[tuple[TimelineEntry, bytes]]) -> None: ...


class GroupCommit(ABC):
    """Makes pending entries durable: `flush()` shares one write and fsync between every caller waiting."""

    # the sealing front's (Recorder): the seq the next entry gets, and the checkpoint signer
    _next_seq: int
    signer: Signer | None

    def __init__(self, store: TimelineStore, linger: float, retry_max: float) -> None:
        self.store = store
        self.linger = linger
        self.sinks: list[DurableSink] = []
        self.barriers: list[Callable[[Sequence[TimelineEntry]], Awaitable[None]]] = []
        """Awaited with each written batch before it counts as durable (the fleet's state changelog)."""
        self._barrier_error: Exception | None = None
        self._pending: list[tuple[TimelineEntry, bytes]] = []
        self._durable_seq = -1
        self.stalled: OSError | None = None  # the write error while the disk refuses entries (see _flush_once)
        self.stalls = 0
        self.retry_max = retry_max
        self._retry_delay = 0.0
        self._dirty = False
        self._flushing: asyncio.Task[None] | None = None
        self._waiters: list[asyncio.Future[None]] = []  # the callers of flush() the running flush wakes
        self.syncs = 0

    @abstractmethod
    def _checkpoint_due(self) -> bool:
        """Whether a checkpoint is owed by the interval (asked before a flush when there is a signer)."""

    @abstractmethod
    def checkpoint(self) -> TimelineEntry | None:
        """Append a signed checkpoint over the current head now."""

    async def flush(self) -> None:
        """Return once every entry appended before the call is durable (group commit).

        Each caller waits on a future of its own, resolved when the running flush ends: cancelling one caller
        cancels only its future, never the flush the others wait for (what `asyncio.shield` gave, for one
        future per caller instead of a future and two callbacks).
        """
        if self.signer is not None and self._checkpoint_due():
            self.checkpoint()
        target = self._next_seq - 1
        while self._durable_seq < target:
            if self._flushing is None:
                self._flushing = asyncio.create_task(self._flush_once())
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    async def _flush_once(self) -> None:
        """One group commit; at its end every caller waiting on it wakes, with its error when it failed."""
        error: BaseException | None = None
        try:
            await self._commit()
        except Exception as exc:  # noqa: BLE001 - handed to every waiter, as awaiting the task would
            error = exc
        except BaseException as exc:  # cancelled (loop teardown): the waiters are cancelled too
            error = exc
            raise
        finally:
            self._flushing = None
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                if waiter.done():  # its caller was cancelled
                    continue
                if error is None:
                    waiter.set_result(None)
                elif isinstance(error, Exception):
                    waiter.set_exception(error)
                else:
                    waiter.cancel()

    async def _commit(self) -> None:
        if self.linger:
            await asyncio.sleep(self.linger)
        batch, upto = self._pending, self._next_seq - 1
        self._pending = []
        if batch:
            try:
                await run_in(pool(TIMELINE), self._write_sync, b"".join([line for _, line in batch]))
            except OSError as exc:
                self._pending = batch + self._pending
                await self._stall(exc)
                return  # not durable: every flush() caller keeps waiting, so nothing acts or commits
        if self.stalled is not None:
            log.warning("timeline_write_recovered", after=self.stalls, error=str(self.stalled))
            self.stalled, self._retry_delay = None, 0.0
        if batch and self.barriers:
            if self._barrier_error is not None:
                raise TimelineError(f"state changelog write failed earlier: {self._barrier_error}") \
                    from self._barrier_error  # a fence stays a fence for whoever flushes next (service/rejoin.py)
            try:
                for barrier in self.barriers:
                    await barrier([entry for entry, _ in batch])
            except Exception as exc:  # the entries are on disk but their state is not: nothing may act on them
                self._barrier_error = exc
                log.critical("changelog_write_failed", error=str(exc))
                raise TimelineError(f"state changelog write failed: {exc}") from exc
        self._durable_seq = upto
        self._notify(batch)

    async def _stall(self, exc: OSError) -> None:
        """The disk refused a batch (full, EIO): keep it in memory, wait, and let the next flush write it again.

        The entries stay chained in memory, so the retry writes exactly the bytes that failed and the chain has
        no gap; the store is cut back to its last sync first. While stalled the service reports unready.
        """
        self._dirty = True
        self.stalled = exc
        self.stalls += 1
        self._retry_delay = min(self.retry_max, max(0.01, self._retry_delay * 2))
        (log.error if self.stalls > 1 else log.critical)("timeline_write_failed", error=str(exc),
                                                         retry_in=self._retry_delay)
        await asyncio.sleep(self._retry_delay)

    def _write_sync(self, data: bytes) -> None:
        if self._dirty:
            self.store.rollback()
            self._dirty = False
        try:
            self.store.write(data)
            self.store.sync()
        except OSError:
            self._dirty = True
            raise
        self.syncs += 1

    def _notify(self, batch: Sequence[tuple[TimelineEntry, bytes]]) -> None:
        if batch:
            for sink in self.sinks:
                sink.accept(batch)

    def flush_sync(self) -> None:
        """Synchronous flush for callers outside an event loop (CLI commands)."""
        batch, upto = self._pending, self._next_seq - 1
        self._pending = []
        if batch:
            self._write_sync(b"".join(line for _, line in batch))
        self._durable_seq = upto
        self._notify(batch)
