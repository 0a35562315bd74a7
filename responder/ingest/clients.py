"""aiokafka clients started and stopped: bootstrap with retry, a consumer close that survives a dead broker,
and the one-off producer and admin calls (`publish`, `ensure_topics`). The consumer group is kafka.py's."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_delay, wait_exponential_jitter

from responder.errors import BrokerUnreachable
from responder.ingest.security import check_connection

log = structlog.get_logger(__name__)


def _servers(client: Any) -> str:
    """The bootstrap servers an aiokafka client was given (for messages only)."""
    inner = getattr(client, "client", None) or getattr(client, "_client", None)
    servers = getattr(inner, "_bootstrap_servers", "?")
    return servers if isinstance(servers, str) else ",".join(map(str, servers))


async def _start_with_retry(client: Any, deadline: float) -> None:
    """aiokafka does not retry bootstrap itself; we do, for `deadline` seconds, logging every failed attempt.

    When the deadline passes the client is closed (no `Unclosed AIOKafka…` warning) and BrokerUnreachable says
    where we tried and how to change the wait.
    """
    kind, servers = type(client).__name__, _servers(client)
    log.info("kafka_connecting", client=kind, bootstrap=servers, timeout_s=deadline)

    def failed(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning("kafka_connect_failed", client=kind, bootstrap=servers, attempt=state.attempt_number,
                    error=str(exc), retry_in_s=round(state.upcoming_sleep, 2))

    try:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(KafkaConnectionError),
            stop=stop_after_delay(deadline),
            wait=wait_exponential_jitter(initial=0.1, max=2.0),
            before_sleep=failed,
            reraise=True,
        ):
            with attempt:
                await client.start()
    except KafkaConnectionError as exc:
        await (client.close() if hasattr(client, "close") else client.stop())
        raise BrokerUnreachable(
            f"cannot reach Kafka at {servers} ({kind}): no answer in {deadline:g}s: {exc} "
            "(check RESPONDER_KAFKA_BOOTSTRAP; RESPONDER_KAFKA_CONNECT_TIMEOUT sets the wait)") from exc


async def stop_consumer(consumer: Any) -> None:
    """Close an aiokafka consumer, even while a broker it fetched from is down.

    aiokafka 0.14's fetcher cancels its fetch tasks on close and awaits them: one sleeping in its retry backoff
    (its broker is dead) raises CancelledError into the caller, which is not a cancellation of ours. A SIGTERMed
    replica then exited with status 1 during the soak's rolling restart. That one is logged and the client closed.
    """
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # we are being cancelled: pass it on
        log.warning("kafka_fetch_cancelled_on_stop")
        for pending in list(getattr(consumer._fetcher, "_pending_tasks", ())):
            pending.cancel()  # the fetches the interrupted close had not reached yet
        await consumer._client.close()  # what stop() had left to do once the fetcher was closed


async def publish(
    bootstrap: str,
    topic: str,
    values: Sequence[bytes],
    *,
    key: bytes | None = None,
    headers: Sequence[tuple[str, bytes]] = (),
    options: Mapping[str, Any] | None = None,
    connect_timeout: float = 15.0,
) -> None:
    """Send records and wait for their acks (demo, tests, tabletop injects, replays)."""
    await check_connection(bootstrap, options or {}, timeout=connect_timeout)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **(options or {}))
    await _start_with_retry(producer, connect_timeout)  # closes the producer itself when Kafka never answers
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=key, headers=list(headers))
    finally:
        await producer.stop()


async def ensure_topics(bootstrap: str, names: Sequence[str], partitions: int = 3, *,
                        options: Mapping[str, Any] | None = None, replication: int = 1) -> None:
    """Create topics that do not exist yet (any Kafka; an existing topic is left alone)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **(options or {}))
    await _start_with_retry(admin, 15.0)
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(n, partitions, replication) for n in names if n not in existing]
        for attempt in range(50):
            if not missing:
                break
            try:
                await admin.create_topics(missing)
                break
            except AttributeError:  # aiokafka reads cluster.controller, unknown right after a cluster starts
                if attempt == 49:
                    raise
                await asyncio.sleep(0.1)
    finally:
        await admin.close()
