"""Whether a broker runs Kafka transactions for aiokafka (Apache Kafka does; Tansu does not): a probe producer
initialises a transactional id; `choose` makes of it what `kafka_transactions` asks (responder/ingest/transactions.py
writes in them)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from responder.errors import ConfigError
from responder.ingest.transactions import Transactions

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


async def choose(mode: str, bootstrap: str, topic: str, group_id: str, *,
                 options: Mapping[str, Any] | None = None) -> Transactions | None:
    """`kafka_transactions`: off = none; on = required (a broker without them is a ConfigError); auto = probed."""
    if mode == "off":
        log.info("kafka_transactions", enabled=False, mode=mode)
        return None
    ok = await supported(bootstrap, group_id, options)
    if not ok and mode == "on":
        raise ConfigError(f"RESPONDER_KAFKA_TRANSACTIONS=on: the broker at {bootstrap} does not run Kafka "
                          "transactions for aiokafka (Tansu does not); set it to auto or off")
    log.info("kafka_transactions", enabled=ok, mode=mode,
             detail="changelog and offsets in one transaction; a zombie replica is fenced" if ok else
             "the broker has no transactions: at-least-once with idempotent steps (docs/fleet.md)")
    return Transactions(bootstrap, topic, group_id, options=options) if ok else None
