"""The recorder: chains entries, signs checkpoints, makes them durable with group commit, feeds sinks."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
import structlog

from responder.errors import ChainBroken, TimelineError
from responder.models.timeline import GENESIS_HASH, EntryKind, TimelineEntry
from responder.settings import Settings
from responder.timeline.chain import Sealer, parse_lines
from responder.timeline.checkpoint import Signer
from responder.timeline.store import FileStore, TimelineStore
from responder.timeline.verify import Verification, verify_lines
from responder.tracing import STAMP

log = structlog.get_logger(__name__)
_MILLIS = [f"{n:03d}" for n in range(1000)]  # the digits of an `at`'s microseconds, in two halves
_MICROS = [f"{n:03d}+00:00" for n in range(1000)]


def default_writer_id() -> str:
    """host:pid, so entries from different replicas are told apart."""
    return f"{socket.gethostname()}:{os.getpid()}"


class DurableSink(Protocol):
    """Told about entries once they are durable (archive, Kafka mirror); must not block."""

    def accept(self, items: Sequence[tuple[TimelineEntry, bytes]]) -> None: ...


class Recorder:
    """Appends chained entries; `flush()` makes them durable, sharing one fsync between concurrent callers.

    With a `signer`, a checkpoint entry signing the head is appended after every `checkpoint_every`
    entries, or at the first append or flush once `checkpoint_interval` seconds have passed, and on close.
    """

    def __init__(
        self,
        store: TimelineStore,
        writer: str | None = None,
        linger: float = 0.0,
        *,
        signer: Signer | None = None,
        checkpoint_every: int = 1000,
        checkpoint_interval: float = 10.0,
        retry_max: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.clock = clock
        self.writer = writer or default_writer_id()
        self.linger = linger
        self.signer = signer
        self.checkpoint_every = checkpoint_every
        self.checkpoint_interval = checkpoint_interval
        self.sinks: list[DurableSink] = []
        self.barriers: list[Callable[[Sequence[TimelineEntry]], Awaitable[None]]] = []
        """Awaited with each written batch before it counts as durable (the fleet's state changelog)."""
        self._barrier_error: Exception | None = None
        self.observers: list[Callable[[TimelineEntry], None]] = []  # called at append, in the appending task
        self._pending: list[tuple[TimelineEntry, bytes]] = []
        self._next_seq = 0
        self._head = GENESIS_HASH
        self._durable_seq = -1
        self.stalled: OSError | None = None  # the write error while the disk refuses entries (see _flush_once)
        self.stalls = 0
        self.retry_max = retry_max
        self._retry_delay = 0.0
        self._dirty = False
        self._since_checkpoint = 0
        self._checkpoint_clock = clock()
        self._flushing: asyncio.Task[None] | None = None
        self._waiters: list[asyncio.Future[None]] = []  # the callers of flush() the running flush wakes
        self.syncs = 0
        self._sealer = Sealer(self.writer)
        self._at_second, self._at_prefix = -1, ""
        self._resume()

    @classmethod
    def from_settings(cls, settings: Settings, clock: Callable[[], float] = time.time) -> Recorder:
        """The file-backed recorder, signing checkpoints when a key is configured; entries are stamped by `clock`."""
        key = settings.timeline_signing_key
        return cls(FileStore(settings.timeline_path), linger=settings.timeline_linger_ms / 1000,
                   signer=Signer.from_text(key.get_secret_value()) if key else None,
                   checkpoint_every=settings.timeline_checkpoint_every,
                   checkpoint_interval=settings.timeline_checkpoint_interval, clock=clock)

    def _resume(self) -> None:
        """Continue after the last entry on disk (orjson only: this runs on every start).

        A file store is read from its tail only (the last 256 KiB), so a start does not grow with history;
        `responder timeline verify` checks the whole chain.
        """
        last: dict[str, Any] | None = None
        first: dict[str, Any] | None = None
        tail = getattr(self.store, "tail", None)
        data = tail(256 * 1024) if tail is not None else self.store.read()
        partial = tail is not None and os.path.getsize(self.store.path) > len(data)  # type: ignore[attr-defined]
        for number, line in enumerate(data.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                last = orjson.loads(line)
                first = first if first is not None else last
                kind, seq, digest, prev = last["kind"], int(last["seq"]), str(last["hash"]), str(last["prev"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise ChainBroken(number, f"line {number} is not a timeline entry: {exc.__class__.__name__}") from exc
            if partial and last is first:  # the tail starts mid-chain: link checks start at its first entry
                self._next_seq, self._head = seq, prev
            if seq != self._next_seq or prev != self._head:  # links only: hashes are `timeline verify`'s job
                reason = (f"sequence gap: expected seq {self._next_seq}, found {seq}" if seq != self._next_seq
                          else "prev does not match the hash of the entry before it")
                raise ChainBroken(seq, f"{reason}; refusing to append to a broken timeline "
                                       "(`responder timeline verify` shows it)")
            self._since_checkpoint = 0 if kind == EntryKind.CHECKPOINT else self._since_checkpoint + 1
            self._next_seq, self._head, self._durable_seq = seq + 1, digest, seq

    @property
    def head(self) -> str:
        """Hash of the last entry appended."""
        return self._head

    @property
    def next_seq(self) -> int:
        """The seq the next entry will get."""
        return self._next_seq

    def append(self, kind: str, body: Mapping[str, Any], incident: str | None = None) -> TimelineEntry:
        """Chain an entry onto the head; durable only after `flush()`. It carries this context's trace `STAMP`."""
        stamp = STAMP.get()
        entry = self._seal(kind, dict(body) if stamp is None else {**stamp, **body}, incident)
        for observer in self.observers:
            observer(entry)
        if self.signer is not None:
            self._since_checkpoint += 1
            if self._since_checkpoint >= self.checkpoint_every or self._checkpoint_due():
                self.checkpoint()
        return entry

    def _at(self) -> str:
        """The clock as ISO 8601 with microseconds (`datetime.isoformat`'s text), the second's prefix cached."""
        now = self.clock()
        second = int(now)  # toward zero, as math.modf
        micros = round((now - second) * 1e6)  # exact: the fraction of a float is representable
        if micros >= 1_000_000 or micros < 0:  # rounded up to the next second, or before 1970
            second, micros = second + micros // 1_000_000, micros % 1_000_000
        if second != self._at_second:
            self._at_second = second
            self._at_prefix = datetime.fromtimestamp(second, UTC).isoformat()[:-6] + "."  # without "+00:00"
        return f"{self._at_prefix}{_MILLIS[micros // 1000]}{_MICROS[micros % 1000]}"  # a third of {micros:06d}'s cost

    def _seal(self, kind: str, body: dict[str, Any], incident: str | None) -> TimelineEntry:
        """Chain an entry with `body`, a dict the caller made for it (kept, never copied again)."""
        sealer = self._sealer
        sealed = sealer.seal(self._head, self._next_seq, self._at(), kind, incident, body)
        self._pending.append(sealed)
        self._head = sealer.last  # the entry's hash, the same str
        self._next_seq += 1
        return sealed[0]

    def _checkpoint_due(self) -> bool:
        return self._since_checkpoint > 0 and self.clock() - self._checkpoint_clock >= self.checkpoint_interval

    def checkpoint(self) -> TimelineEntry | None:
        """Append a signed checkpoint over the current head now (None without a signer or an empty chain)."""
        if self.signer is None or self._next_seq == 0:
            return None
        body = self.signer.body(self.writer, self._next_seq - 1, self._head)
        self._since_checkpoint = 0
        self._checkpoint_clock = self.clock()
        return self._seal(EntryKind.CHECKPOINT, dict(body), None)

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
                await asyncio.to_thread(self._write_sync, b"".join([line for _, line in batch]))
            except OSError as exc:
                self._pending = batch + self._pending
                await self._stall(exc)
                return  # not durable: every flush() caller keeps waiting, so nothing acts or commits
        if self.stalled is not None:
            log.warning("timeline_write_recovered", after=self.stalls, error=str(self.stalled))
            self.stalled, self._retry_delay = None, 0.0
        if batch and self.barriers:
            if self._barrier_error is not None:
                raise TimelineError(f"state changelog write failed earlier: {self._barrier_error}")
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

    def entries(self) -> Iterator[TimelineEntry]:
        """Every durable entry, in order."""
        return parse_lines(self.store.read().splitlines())

    def verify(self) -> Verification:
        """Verify the durable chain (links and hashes; signatures need a Checker, see verify_lines)."""
        return verify_lines(self.store.read().splitlines())

    def close(self) -> None:
        """Seal with a final checkpoint when anything is unsigned, flush, and close the store."""
        if self.signer is not None and self._since_checkpoint > 0:
            self.checkpoint()
        self.flush_sync()
        self.store.close()
