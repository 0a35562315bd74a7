"""The acknowledged producer behind the HTTP intake: one aiokafka client, `acks=all`, one place to configure it.

`send()` returns only after every in-sync replica acknowledged the record, or raises
`BrokerUnavailable` (the intake answers 503 with Retry-After), or `RecordTooLarge` when the client's
`max_request_size` or the broker's `max.message.bytes` refuses it (permanent: the intake answers 413).
TLS/SASL options come from `responder.ingest.security.kafka_client_options`, like every other client's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError

from responder.errors import BrokerUnavailable, RecordTooLarge

log = structlog.get_logger(__name__)
TOO_LARGE = (MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError)
RECORD_HEADROOM_BYTES = 64 * 1024  # a record is its value plus key, headers and batch framing


class AckedProducer:
    """Sends records and waits for the broker's acknowledgement (`acks=all`); restarts itself after outages."""

    def __init__(self, bootstrap: str, *, send_timeout: float = 10.0, options: dict[str, Any] | None = None,
                 max_value_bytes: int | None = None) -> None:
        """`max_value_bytes`: the largest value to send; `max_request_size` gets RECORD_HEADROOM_BYTES above it."""
        self.bootstrap = bootstrap
        self.options = dict(options or {})
        if max_value_bytes is not None:
            self.options["max_request_size"] = max_value_bytes + RECORD_HEADROOM_BYTES
        self.send_timeout = send_timeout
        self._producer: Any = None
        self._healthy = False
        self._lock = asyncio.Lock()

    @property
    def connected(self) -> bool:
        """Whether a started client is available and its last send (or check) reached the broker."""
        return self._producer is not None and self._healthy

    def _new(self) -> Any:
        timeout_ms = int(self.send_timeout * 1000)
        return AIOKafkaProducer(bootstrap_servers=self.bootstrap, **self.options, acks="all", linger_ms=0,
                                request_timeout_ms=timeout_ms, retry_backoff_ms=100)

    async def start(self) -> None:
        """Connect (or, once connected, check the broker answers); raises BrokerUnavailable when it does not."""
        async with self._lock:
            if self._producer is not None:
                if not self._healthy:
                    await self._check()
                return
            producer = self._new()
            try:
                await asyncio.wait_for(producer.start(), self.send_timeout)
            except (KafkaError, OSError, TimeoutError) as exc:
                await _quiet_stop(producer)
                raise BrokerUnavailable(f"Kafka at {self.bootstrap} is unreachable: {exc.__class__.__name__}") from exc
            self._producer = producer
            self._healthy = True
            log.info("producer_started", bootstrap=self.bootstrap)

    async def _check(self) -> None:
        try:
            await asyncio.wait_for(self._producer.client.fetch_all_metadata(), self.send_timeout)
        except (KafkaError, OSError, TimeoutError) as exc:
            raise BrokerUnavailable(f"Kafka at {self.bootstrap} does not answer: {exc.__class__.__name__}") from exc
        self._healthy = True

    async def send(self, topic: str, value: bytes, *, key: bytes | None,
                   headers: Sequence[tuple[str, bytes]] = ()) -> tuple[int, int]:
        """Produce one record and wait for its acknowledgement; (partition, offset)."""
        if self._producer is None:
            await self.start()
        producer = self._producer
        try:
            meta = await asyncio.wait_for(
                producer.send_and_wait(topic, value, key=key, headers=list(headers)), self.send_timeout)
        except TOO_LARGE as exc:  # the broker answered (or the client refused before sending): not an outage
            log.warning("produce_refused_too_large", topic=topic, size=len(value), error=exc.__class__.__name__)
            raise RecordTooLarge(f"Kafka refuses a record of {len(value)} bytes ({exc.__class__.__name__}); the "
                                 f"topic's max.message.bytes must allow it plus {RECORD_HEADROOM_BYTES} bytes") from exc
        except (KafkaError, OSError, TimeoutError) as exc:
            self._healthy = False
            log.warning("produce_failed", topic=topic, error=exc.__class__.__name__)
            raise BrokerUnavailable(f"Kafka did not acknowledge: {exc.__class__.__name__}") from exc
        self._healthy = True
        return int(meta.partition), int(meta.offset)

    async def stop(self) -> None:
        """Flush and close."""
        async with self._lock:
            if self._producer is not None:
                await _quiet_stop(self._producer)
                self._producer = None
                self._healthy = False


async def _quiet_stop(producer: Any) -> None:
    try:
        await producer.stop()
    except (KafkaError, OSError) as exc:  # pragma: no cover - best effort on shutdown
        log.warning("producer_stop_failed", error=str(exc))
