"""Whether a broker runs Kafka transactions for aiokafka (Apache Kafka does; Tansu does not): a probe producer
initialises a transactional id (responder/ingest/transactions.py `choose`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

log = structlog.get_logger(__name__)


async def supported(bootstrap: str, group_id: str, options: Mapping[str, Any] | None = None,
                    timeout: float = 15.0) -> bool:
    """Whether the broker runs transactions for aiokafka: a probe producer initialises a transactional id."""
    probe = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"{group_id}.probe",
                             request_timeout_ms=int(timeout * 1000), **(options or {}))
    try:
        await asyncio.wait_for(probe.start(), timeout)
        async with probe.transaction():
            pass
    except (KafkaError, TimeoutError, OSError) as exc:
        log.info("kafka_transactions_unsupported", error=f"{type(exc).__name__}: {exc}")
        return False
    finally:
        with contextlib.suppress(KafkaError, OSError):
            await probe.stop()
    return True
