"""The Kafka publisher notify.kafka uses (injected through ActuationContext.extras; aiokafka stays in ingest)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from responder.errors import TransientActuationError


class KafkaPublisher:
    """Sends one record and waits for the ack; Kafka errors become TransientActuationError (retried)."""

    def __init__(self, producer: Any) -> None:
        self.producer = producer

    @classmethod
    def connect(cls, bootstrap: str) -> KafkaPublisher:
        """A publisher with its own producer (call `start()` before use, `stop()` after)."""
        return cls(AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0))

    async def start(self) -> None:
        """Connect the producer."""
        await self.producer.start()

    async def stop(self) -> None:
        """Flush and close the producer."""
        await self.producer.stop()

    async def publish(self, topic: str, value: bytes, *, key: bytes | None = None,
                      headers: Sequence[tuple[str, bytes]] = ()) -> None:
        """Send and wait for the broker's acknowledgement."""
        try:
            await self.producer.send_and_wait(topic, value, key=key, headers=list(headers))
        except KafkaError as exc:
            raise TransientActuationError(f"kafka publish failed: {exc}", code=type(exc).__name__) from exc
