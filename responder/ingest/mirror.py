"""The timeline's optional Kafka mirror (aiokafka stays in ingest): every durable line, in order, keyed by writer."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from responder.ingest.clients import _start_with_retry
from responder.models.timeline import TimelineEntry

log = structlog.get_logger(__name__)


class KafkaMirror:
    """A durable sink for the recorder: queues lines, a task produces them to one topic (one partition per writer)."""

    def __init__(self, bootstrap: str, topic: str, *, retry_delay: float = 1.0,
                 options: Mapping[str, Any] | None = None) -> None:
        self.topic = topic
        self.retry_delay = retry_delay
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                         enable_idempotence=False, **(options or {}))
        self._queue: list[tuple[bytes, bytes]] = []
        self._wake = asyncio.Event()
        self._closing = False
        self.sent = 0

    def accept(self, items: Sequence[tuple[TimelineEntry, bytes]]) -> None:
        """Queue lines that just became durable."""
        self._queue.extend((entry.writer.encode(), line.rstrip(b"\n")) for entry, line in items)
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
                    batch = self._queue[:500]
                    try:
                        futures = [await self.producer.send(self.topic, value, key=key) for key, value in batch]
                        await asyncio.gather(*futures)
                    except KafkaError as exc:
                        log.warning("timeline_mirror_failed", error=str(exc), pending=len(self._queue))
                        if self._closing:
                            return
                        await asyncio.sleep(self.retry_delay)
                        continue
                    del self._queue[: len(batch)]
                    self.sent += len(batch)
                if self._closing:
                    return
        finally:
            await self.producer.stop()
