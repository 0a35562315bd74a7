"""Replay of the dead-letter topic: re-publish rejected records, once their cause is fixed.

A dead-lettered record keeps its original value, key and headers, plus `dlq.*` headers (reason,
detail, topic, partition, offset, time). Replay sends value, key and the original headers (without
`dlq.*`) back to the original topic, or to `to_topic`. Replaying twice re-sends twice: that is safe
because every effect downstream is idempotent, and `--reason` narrows what is sent.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from responder.ingest.kafka import _start_with_retry
from responder.ingest.security import check_connection

log = structlog.get_logger(__name__)
DLQ_PREFIX = "dlq."


@dataclass
class ReplayResult:
    """What a replay read and sent."""

    scanned: int = 0
    replayed: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    targets: Counter[str] = field(default_factory=Counter)


def _header(headers: list[tuple[str, bytes]], name: str) -> str | None:
    found = [v for k, v in headers if k == name]
    return found[-1].decode(errors="replace") if found else None


async def replay_deadletters(
    bootstrap: str,
    deadletter_topic: str,
    *,
    reason: str | None = None,
    to_topic: str | None = None,
    limit: int | None = None,
    dry_run: bool = False,
    idle_seconds: float = 3.0,
    options: Mapping[str, Any] | None = None,
) -> ReplayResult:
    """Read the whole dead-letter topic once and re-publish the matching records."""
    result = ReplayResult()
    await check_connection(bootstrap, options or {})
    consumer = AIOKafkaConsumer(deadletter_topic, bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest", **(options or {}))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **(options or {}))
    await _start_with_retry(consumer, 15.0)
    await _start_with_retry(producer, 15.0)
    try:
        idle_since = time.monotonic()
        while limit is None or result.replayed < limit:
            batch = await consumer.getmany(timeout_ms=300, max_records=500)
            records = [m for msgs in batch.values() for m in msgs]
            if not records:
                if time.monotonic() - idle_since > idle_seconds:
                    break
                continue
            idle_since = time.monotonic()
            for msg in records:
                result.scanned += 1
                headers = [(k, v if v is not None else b"") for k, v in (msg.headers or ())]
                why = _header(headers, "dlq.reason") or "unknown"
                if reason is not None and why != reason:
                    continue
                target = to_topic or _header(headers, "dlq.topic")
                if not target:
                    continue
                original = [(k, v) for k, v in headers if not k.startswith(DLQ_PREFIX)]
                if not dry_run:
                    await producer.send_and_wait(target, msg.value, key=msg.key, headers=original)
                result.replayed += 1
                result.by_reason[why] += 1
                result.targets[target] += 1
                if limit is not None and result.replayed >= limit:
                    break
    finally:
        await consumer.stop()
        await producer.stop()
    log.info("deadletters_replayed", scanned=result.scanned, replayed=result.replayed, dry_run=dry_run,
             reasons=dict(result.by_reason))
    return result
