"""The timeline's optional Kafka mirror (aiokafka stays in ingest): every durable line, in order, keyed by writer.

Best effort (docs/timeline.md): the timeline file is the record, the mirror a copy (`timeline verify` never reads
it). A failed send is sent again every `retry_delay` seconds after fresh metadata, the lines after it waiting in
order; each distinct error is logged once (`timeline_mirror_failed`: a warning when transient) and its end once
(`timeline_mirror_recovered`). A line the topic refuses for good by itself is dropped, logged
(`timeline_mirror_line_dropped`) and counted: at once when too large, else after `SEND_DEADLINE` seconds of such
refusals. Lines refused together (a batch too large) are sent again one at a time, so only the line at fault is
dropped; a refusal of the topic (an ACL) is not the line's: its lines wait. At most `max_pending` lines wait, past
it the oldest not in flight are dropped (`overflowed`; `timeline_mirror_overflow` once a burst, which ends under
half the cap). `pending`, `dropped`, `overflowed` are gauges `responder_timeline_mirror_{pending,dropped,overflowed}`.

A producer that cannot start (BrokerUnreachable after `connect_timeout`, any KafkaError, an ACL's too: never given up
for the process's life) is logged once (`timeline_mirror_unavailable`, an error, again when the error changes) and a
new one started after `retry_delay` seconds, doubled each time up to `START_BACKOFF_MAX` (aiokafka cannot start a
stopped producer again; once the outage was said its starts log their attempts at debug level); a CancelledError out
of a start that neither `close()` nor `run`'s owner asked for (aiokafka cancelling a future of its own) is one more
failed start. The lines queue meanwhile, bounded as above, and are sent in order once one starts. It never fails the
service. `close()` before one started ends `run` at once (a start in progress is cancelled), saying how many lines
were left unmirrored (`timeline_mirror_closed_unstarted`): the file holds them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from responder.bounds import SEND_DEADLINE
from responder.errors import BrokerUnreachable
from responder.ingest.clients import _start_with_retry, fixed_wait, transient_send
from responder.ingest.refusals import TOO_LARGE, TOPIC_REFUSED, refused_together
from responder.models.timeline import TimelineEntry

log = structlog.get_logger(__name__)

BATCH = 500  # lines sent at a time
MAX_PENDING = 100_000  # lines waiting at most (`timeline_mirror_max_pending`)
START_BACKOFF_MAX = 30.0  # seconds between two starts of a producer at most (from `retry_delay`, doubled)


class KafkaMirror:
    """A durable sink for the recorder: queues lines, a task produces them to one topic (one partition per writer).
    `producer` is the current producer (the service's teardown stops it); `make_producer` builds each new one."""

    connect_timeout = 30.0  # seconds one producer's start tries to reach a broker (tests shrink it)

    def __init__(self, bootstrap: str, topic: str, *, retry_delay: float = 1.0, max_pending: int = MAX_PENDING,
                 deadline: float = SEND_DEADLINE, options: Mapping[str, Any] | None = None) -> None:
        self.topic = topic
        self.retry_delay, self.max_pending, self.deadline = retry_delay, max_pending, deadline
        self.make_producer: Callable[[], AIOKafkaProducer] = functools.partial(
            AIOKafkaProducer, bootstrap_servers=bootstrap, acks="all", linger_ms=5, enable_idempotence=False,
            **(options or {}))
        self.producer = self.make_producer()
        self._closed = asyncio.Event()
        self._queue: list[tuple[bytes, bytes, int]] = []  # (writer, line, seq)
        self._wake = asyncio.Event()
        self._closing = False
        self.sent = 0
        self.dropped = 0
        self.overflowed = 0  # lines dropped because `max_pending` were waiting
        self.failing: str | None = None  # the error the last attempt ended with, until a batch goes through
        self._in_flight = 0  # the first lines of the queue, being sent: never dropped for room
        self._singly = 0  # lines to send one at a time (their batch was refused as too large)
        self._stuck: tuple[bytes, int, float] | None = None  # (writer, seq, first failure) of a line refused for good
        self._overflowing = False

    @property
    def pending(self) -> int:
        """Lines durable in the timeline and not in the mirror yet."""
        return len(self._queue)

    def accept(self, items: Sequence[tuple[TimelineEntry, bytes]]) -> None:
        """Queue lines that just became durable."""
        self._queue.extend((entry.writer.encode(), line.rstrip(b"\n"), entry.seq) for entry, line in items)
        self._wake.set()
        over = len(self._queue) - self.max_pending
        if over > 0:  # the oldest lines not in flight make room: the timeline file holds them
            writer, _, seq = self._queue[self._in_flight]
            del self._queue[self._in_flight:self._in_flight + over]
            self.overflowed += over
            if not self._overflowing:
                self._overflowing = True
                log.error("timeline_mirror_overflow", topic=self.topic, max_pending=self.max_pending,
                          writer=writer.decode(errors="replace"), first_seq=seq, failing=self.failing,
                          detail="the oldest lines waiting are dropped, never mirrored; the timeline file holds them")

    def close(self) -> None:
        """Send what is queued, then let `run` return (at once when no producer started yet)."""
        self._closing = True
        self._wake.set()
        self._closed.set()

    async def run(self) -> None:
        """Start a producer (`_started`) and send in order (a batch at a time) until closed and drained."""
        try:
            if not await self._started():
                return
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._queue:
                    if not await self._send_some():
                        if self._closing:
                            return
                        self.producer.client.force_metadata_update()  # the leader may have moved
                        await asyncio.sleep(self.retry_delay)
                if self._closing:
                    return
        finally:
            await self.producer.stop()  # the one started, or the last one that failed to (a no-op: closed)

    async def _started(self) -> bool:
        """Start `producer`, and a new one after each failure (backing off), until one started (True) or the mirror
        was closed (False: a start in progress is cancelled, which closes its producer)."""
        delay = self.retry_delay
        while True:
            starting = asyncio.ensure_future(_start_with_retry(  # quiet once the outage was said
                self.producer, self.connect_timeout, quiet=self.failing is not None,
                wait_set_by=fixed_wait("the timeline mirror", self.connect_timeout)))
            closed, stopped = asyncio.ensure_future(self._closed.wait()), False
            try:
                await asyncio.wait({starting, closed}, return_when=asyncio.FIRST_COMPLETED)
            finally:  # cancelled ourselves too: the start goes with us
                closed.cancel()
                if stopped := not starting.done():
                    starting.cancel()  # then awaited: a cancellation of ours meanwhile is raised, never swallowed
                    await asyncio.wait([starting])
            if stopped:  # closed first (a cancellation of ours was raised above)
                break
            # cancelled with nobody asking (aiokafka cancelled a future of its own): one more failed start
            error = asyncio.CancelledError("the start was cancelled, not by a close") if starting.cancelled() \
                else starting.exception()
            if error is None:
                if self.failing is not None:
                    log.info("timeline_mirror_recovered", topic=self.topic, error=self.failing,
                             pending=len(self._queue))
                    self.failing = None
                return True
            if not isinstance(error, KafkaError | BrokerUnreachable | asyncio.CancelledError):
                raise error  # a bug, not Kafka's answer
            if repr(error) != self.failing:  # once per distinct error, not once per attempt
                self.failing = repr(error)
                log.error("timeline_mirror_unavailable", topic=self.topic, error=self.failing, pending=len(self._queue),
                          retry_in_s=delay, detail="its producer did not start: lines queue (the timeline file is "
                                                   "the record) and a new producer is started after a backoff")
            if await self._backoff(delay):  # closed meanwhile
                break
            delay = min(START_BACKOFF_MAX, delay * 2)
            self.producer = self.make_producer()  # aiokafka cannot start a stopped producer again
        log.warning("timeline_mirror_closed_unstarted", topic=self.topic, pending=len(self._queue), error=self.failing,
                    detail="closed before a producer started: these lines were never mirrored; the timeline file "
                           "holds them")
        return False

    async def _backoff(self, delay: float) -> bool:
        """Wait `delay` seconds between two starts, less when closed meanwhile; whether it was closed."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), delay)
        return self._closed.is_set()

    async def _send_some(self) -> bool:
        """Send the next batch; take off the queue the lines acknowledged, or dropped (`_dropping`), before the first
        other failure. Whether to go on at once (no failure held the queue up)."""
        batch = self._queue[:1 if self._singly else min(BATCH, self.max_pending)]
        sends: list[asyncio.Future[Any] | KafkaError] = []
        self._in_flight = len(batch)
        try:
            for key, value, _ in batch:
                try:
                    sends.append(await self.producer.send(self.topic, value, key=key))
                except TOO_LARGE as exc:  # refused before it was queued: it never fits, the lines after it are sent
                    sends.append(exc)
                except KafkaError as exc:  # no metadata, a full buffer: the next would wait as long, and land ahead
                    sends.append(exc)
                    break
            await asyncio.gather(*(s for s in sends if isinstance(s, asyncio.Future)), return_exceptions=True)
        finally:
            self._in_flight = 0
        errors = [s if isinstance(s, KafkaError) else s.exception() for s in sends]
        done, batched = len(errors), 0
        for i, error in enumerate(errors):
            batched = refused_together(sends, errors, i)
            if error is not None and not self._dropping(i, error, batched=batched > 1):
                done = i
                break
        self._singly = max(0, self._singly - done)
        for (writer, line, seq), dropped in zip(self._queue[:done], errors[:done], strict=True):
            if dropped is not None:  # it never goes through, so it never holds up the lines after it
                log.error("timeline_mirror_line_dropped", topic=self.topic, writer=writer.decode(errors="replace"),
                          seq=seq, size=len(line), error=repr(dropped),
                          detail="the mirror has no line of this seq; the timeline file holds it")
                self.dropped += 1
            else:
                self.sent += 1
        del self._queue[:done]
        if self._overflowing and len(self._queue) <= self.max_pending // 2:
            self._overflowing = False  # that burst is over: the next overflow is said again
        error = errors[done] if done < len(errors) else None
        if error is None:
            if self.failing is not None:
                log.info("timeline_mirror_recovered", topic=self.topic, error=self.failing, pending=len(self._queue))
                self.failing = None
            return True
        if batched > 1 and not (transient_send(error) or isinstance(error, TOPIC_REFUSED)):  # refused for good
            self._singly = batched  # together (too large, say): those lines go one at a time
            return True
        if repr(error) != self.failing:  # once per distinct error, not once a second
            self.failing = repr(error)
            (log.warning if transient_send(error) else log.error)(
                "timeline_mirror_failed", topic=self.topic, error=self.failing, transient=transient_send(error),
                pending=len(self._queue), retry_in_s=self.retry_delay)
        return False

    def _dropping(self, index: int, error: BaseException, *, batched: bool) -> bool:
        """Whether the line at `index` that failed with `error` is dropped. Only a refusal of that line alone (not of a
        batch: `batched`) for good (neither transient nor the topic's refusal): at once when it is too large, else
        once `deadline` seconds have passed since its first such failure."""
        if transient_send(error) or isinstance(error, TOPIC_REFUSED) or batched:
            self._stuck = None
            return False
        if isinstance(error, TOO_LARGE):
            return True
        writer, _, seq = self._queue[index]
        now = time.monotonic()
        if self._stuck is None or self._stuck[:2] != (writer, seq):
            self._stuck = (writer, seq, now)
        return now - self._stuck[2] >= self.deadline

