"""The timeline's optional Kafka mirror (aiokafka stays in ingest): every durable line, in order, keyed by writer.

Best effort: the timeline file is the record, the mirror a copy held elsewhere. A send that fails is sent again every
`retry_delay` seconds, after asking for fresh metadata (a leader moved), the lines after it waiting in order; each
distinct error is logged once (`timeline_mirror_failed`: a warning when it is transient, an error when it is not, as an
ACL refusing the topic) and its end once (`timeline_mirror_recovered`). A line the topic refuses for good by itself
(too large for the broker) is dropped, logged (`timeline_mirror_line_dropped`) and counted, so it never holds up the
lines after it. `pending` and `dropped` are `responder_timeline_mirror_pending` and `responder_timeline_mirror_dropped`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError, RecordListTooLargeError

from responder.ingest.clients import _start_with_retry, transient_send
from responder.models.timeline import TimelineEntry

log = structlog.get_logger(__name__)

TOO_LARGE = (MessageSizeTooLargeError, RecordListTooLargeError)  # that line never fits; the others may


class KafkaMirror:
    """A durable sink for the recorder: queues lines, a task produces them to one topic (one partition per writer)."""

    def __init__(self, bootstrap: str, topic: str, *, retry_delay: float = 1.0,
                 options: Mapping[str, Any] | None = None) -> None:
        self.topic = topic
        self.retry_delay = retry_delay
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                         enable_idempotence=False, **(options or {}))
        self._queue: list[tuple[bytes, bytes, int]] = []  # (writer, line, seq)
        self._wake = asyncio.Event()
        self._closing = False
        self.sent = 0
        self.dropped = 0
        self.failing: str | None = None  # the error the last attempt ended with, until a batch goes through

    @property
    def pending(self) -> int:
        """Lines durable in the timeline and not in the mirror yet."""
        return len(self._queue)

    def accept(self, items: Sequence[tuple[TimelineEntry, bytes]]) -> None:
        """Queue lines that just became durable."""
        self._queue.extend((entry.writer.encode(), line.rstrip(b"\n"), entry.seq) for entry, line in items)
        self._wake.set()

    def close(self) -> None:
        """Send what is queued, then let `run` return."""
        self._closing = True
        self._wake.set()

    async def run(self) -> None:
        """Start the producer and send in order (a batch at a time) until closed and drained."""
        try:
            await _start_with_retry(self.producer, 30.0)
        except KafkaError as exc:
            log.error("timeline_mirror_unavailable", error=str(exc))
            return
        try:
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
            await self.producer.stop()

    async def _send_some(self) -> bool:
        """Send the next batch; take off the queue the lines acknowledged, or too large ever to be, before the first
        other failure. Whether the batch went through."""
        batch = self._queue[:500]
        sends: list[asyncio.Future[Any] | KafkaError] = []
        for key, value, _ in batch:
            try:
                sends.append(await self.producer.send(self.topic, value, key=key))
            except TOO_LARGE as exc:  # refused before it was queued: it never fits, the lines after it are sent
                sends.append(exc)
            except KafkaError as exc:  # no metadata, a full buffer: the next would wait as long, and land ahead of it
                sends.append(exc)
                break
        await asyncio.gather(*(s for s in sends if isinstance(s, asyncio.Future)), return_exceptions=True)
        errors = [s if isinstance(s, KafkaError) else s.exception() for s in sends]
        done = next((i for i, e in enumerate(errors) if e is not None and not isinstance(e, TOO_LARGE)), len(errors))
        for (writer, line, seq), dropped in zip(self._queue[:done], errors[:done], strict=True):
            if dropped is not None:  # too large: it never fits, so it never holds up the lines after it
                log.error("timeline_mirror_line_dropped", topic=self.topic, writer=writer.decode(errors="replace"),
                          seq=seq, size=len(line), error=repr(dropped),
                          detail="the mirror has no line of this seq; the timeline file holds it")
                self.dropped += 1
            else:
                self.sent += 1
        del self._queue[:done]
        error = errors[done] if done < len(errors) else None
        if error is None:
            if self.failing is not None:
                log.info("timeline_mirror_recovered", topic=self.topic, error=self.failing, pending=len(self._queue))
                self.failing = None
            return True
        if repr(error) != self.failing:  # once per distinct error, not once a second
            self.failing = repr(error)
            (log.warning if transient_send(error) else log.error)(
                "timeline_mirror_failed", topic=self.topic, error=self.failing, transient=transient_send(error),
                pending=len(self._queue), retry_in_s=self.retry_delay)
        return False
