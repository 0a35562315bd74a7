"""aiokafka clients started and stopped: bootstrap with retry, a consumer close that survives a dead broker,
sends retried after a transient error, and the one-off producer (`publish`). The one-off admin calls are admin.py's
(`with_admin`, `ensure_topics`), the consumer group kafka.py's, a producer's stop within a deadline producerstop.py's
(`stop_producer`)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidProducerEpoch,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    ProducerFenced,
    TransactionCoordinatorFenced,
)
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)

from responder.bounds import SEND_DEADLINE
from responder.errors import BrokerUnreachable
from responder.exception_groups import cancel_requests
from responder.ingest.security import check_connection

log = structlog.get_logger(__name__)

T = TypeVar("T")


def _servers(client: Any) -> str:
    """The bootstrap servers an aiokafka client was given (for messages only)."""
    inner = getattr(client, "client", None) or getattr(client, "_client", None)
    servers = getattr(inner, "_bootstrap_servers", "?")
    return servers if isinstance(servers, str) else ",".join(map(str, servers))


CONNECT_TIMEOUT = "RESPONDER_KAFKA_CONNECT_TIMEOUT"
"""The `wait_set_by` of a client that waits that setting (`kafka_connect_timeout`: the service's clients)."""


def fixed_wait(what: str, seconds: float) -> str:
    """The `wait_set_by` of a client whose wait for Kafka is fixed (`what`'s `seconds`), not a setting."""
    return f"{what}'s fixed {seconds:g}s deadline, not {CONNECT_TIMEOUT},"


async def _start_with_retry(client: Any, deadline: float, *, wait_set_by: str, quiet: bool = False) -> None:
    """aiokafka does not retry bootstrap itself; we do, for `deadline` seconds, logging every failed attempt
    (`kafka_connect_failed`, a warning; at debug level with `quiet`, as `kafka_connecting`: for a caller that says
    the outage itself, once, and starts again and again while it lasts, as the timeline mirror).

    When the deadline passes the client is closed (no `Unclosed AIOKafka…` warning) and BrokerUnreachable says
    where we tried and how to change the wait (`wait_set_by`, which every caller gives: `CONNECT_TIMEOUT` when the
    setting is `deadline`, else `fixed_wait`); any other error from `start()`, or a cancellation, closes it too, and
    is raised. Only the retries end at the deadline, never an attempt under way (a transactional producer's start
    waits for its producer id with no limit: `Transactions._start` cuts it).
    """
    kind, servers = type(client).__name__, _servers(client)
    (log.debug if quiet else log.info)("kafka_connecting", client=kind, bootstrap=servers, timeout_s=deadline)

    def failed(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        (log.debug if quiet else log.warning)(
            "kafka_connect_failed", client=kind, bootstrap=servers, attempt=state.attempt_number, error=str(exc),
            retry_in_s=round(state.upcoming_sleep, 2))

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
    except BaseException as exc:  # a cancelled start too (a restore ended by a revocation): closed, then raised
        with contextlib.suppress(Exception):  # never left half started; the start's own error is the one raised
            await (client.close() if hasattr(client, "close") else client.stop())
        if not isinstance(exc, KafkaConnectionError):
            raise
        raise BrokerUnreachable(
            f"cannot reach Kafka at {servers} ({kind}): no answer in {deadline:g}s: {exc} "
            f"(check RESPONDER_KAFKA_BOOTSTRAP; {wait_set_by} sets the wait)") from exc


async def stop_consumer(consumer: Any) -> None:
    """Close an aiokafka consumer, even while a broker it fetched from is down.

    aiokafka 0.14's fetcher cancels its fetch tasks on close and awaits them: one sleeping in its retry backoff
    (its broker is dead) raises CancelledError into the caller, which is not a cancellation of ours. A SIGTERMed
    replica then exited with status 1 during the soak's rolling restart. That one is logged and the client closed.

    Ours is a cancel request made while the stop ran: the task's count is compared with the one it had on entry,
    not with 0. Python 3.11's TaskGroup leaves the count at 1 when a child fails while it waits for the others (it
    cancels its parent to wake it and never takes that back), so after the service's loops failed every teardown
    stop looked cancelled, the stray error went on, hid the loops' own error (a fence, which rejoins) and the
    replica exited 1 (CI, 2026-12-06, the 3-broker fleet test).
    """
    before = cancel_requests()
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        if cancel_requests() > before:
            raise  # we are being cancelled: pass it on
        log.warning("kafka_fetch_cancelled_on_stop")
        for pending in list(getattr(consumer._fetcher, "_pending_tasks", ())):
            pending.cancel()  # the fetches the interrupted close had not reached yet
        await consumer._client.close()  # what stop() had left to do once the fetcher was closed


def transient_send(exc: BaseException) -> bool:
    """Whether a failed send is worth sending again: what aiokafka marks retriable (a node not ready, no leader or
    not the leader while a broker is down, a request timed out, not enough in-sync replicas…) and a batch that
    expired before any of those cleared (KafkaTimeoutError). A record too large or an ACL refusal is not."""
    return isinstance(exc, KafkaTimeoutError) or (isinstance(exc, KafkaError) and bool(exc.retriable))


FENCES = (ProducerFenced, InvalidProducerEpoch, TransactionCoordinatorFenced)
"""What a fenced producer gets (aiokafka's names for a newer epoch of its transactional id). Not every error named
after an epoch: aiokafka's StaleLeaderEpochCodeError is Kafka's error 13, NETWORK_EXCEPTION, a cut-off."""


def fenced_error(exc: BaseException) -> bool:
    """One of `FENCES`, or another aiokafka error named a fence."""
    return isinstance(exc, FENCES) or "fenced" in type(exc).__name__.lower()


async def resending(producer: Any, topic: str, send: Callable[[], Awaitable[T]], *,
                    deadline: float = SEND_DEADLINE) -> T:
    """`send()`, called again after a transient error (`transient_send`) with the connect retry's policy (jittered
    exponential backoff from 0.1 s to 2 s) until `deadline` seconds have passed since its first failure, each retry
    logged (`kafka_send_retried`) after asking `producer` for fresh metadata (the leader may have moved); then the last
    error is raised. A permanent error is raised at once. What `send()` sent before it failed may be there twice.

    Counted from the first failure, not the first attempt: aiokafka gives a batch up only after its request timeout
    (40 s by default), longer than `SEND_DEADLINE`, so counted from the start nothing was ever sent again. An attempt
    begun just before the deadline may itself take a request timeout: at aiokafka's defaults a send gives up after at
    most about 40 + 30 + 40 s."""
    first_failure: float | None = None

    def spent(state: RetryCallState) -> bool:
        nonlocal first_failure
        now = state.outcome_timestamp if state.outcome_timestamp is not None else time.monotonic()
        first_failure = now if first_failure is None else first_failure
        return now - first_failure >= deadline

    def failed(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning("kafka_send_retried", topic=topic, attempt=state.attempt_number, error=repr(exc),
                    retry_in_s=round(state.upcoming_sleep, 2))
        client = getattr(producer, "client", None)
        if client is not None:
            client.force_metadata_update()

    async def once() -> T:  # a coroutine function: tenacity would not await what a lambda returns
        return await send()

    retrying = AsyncRetrying(retry=retry_if_exception(transient_send), stop=spent,
                             wait=wait_exponential_jitter(initial=0.1, max=2.0), before_sleep=failed, reraise=True)
    return await retrying(once)


async def send_retrying(producer: Any, topic: str, value: bytes | None, *, key: bytes | None = None,
                        headers: Sequence[tuple[str, bytes]] = (), partition: int | None = None,
                        timestamp_ms: int | None = None, deadline: float = SEND_DEADLINE) -> Any:
    """`producer.send_and_wait(...)` (its RecordMetadata), sent again after a transient error (`resending`). A
    retried send that had reached the broker is there twice: its readers deduplicate (notifications by idempotency
    key, decisions by their bytes, replies by request id, dead letters by their coordinates, changelog records by
    key). `timestamp_ms` (a replayed record's own time) is passed on only when given."""
    stamp = {} if timestamp_ms is None else {"timestamp_ms": timestamp_ms}
    return await resending(producer, topic, lambda: producer.send_and_wait(
        topic, value, key=key, partition=partition, headers=list(headers), **stamp), deadline=deadline)


async def publish(
    bootstrap: str,
    topic: str,
    values: Sequence[bytes],
    *,
    key: bytes | None = None,
    headers: Sequence[tuple[str, bytes]] = (),
    options: Mapping[str, Any] | None = None,
    connect_timeout: float = 15.0,
    wait_set_by: str | None = None,
) -> None:
    """Send records and wait for their acks (demo, tests, tabletop injects, replays). Kafka is waited for
    `connect_timeout` seconds, which `wait_set_by` sets (a setting, for BrokerUnreachable to name), else a fixed
    wait (`fixed_wait`)."""
    await check_connection(bootstrap, options or {}, timeout=connect_timeout)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **(options or {}))
    await _start_with_retry(producer, connect_timeout,  # closes the producer itself when Kafka never answers
                            wait_set_by=wait_set_by or fixed_wait("a publish", connect_timeout))
    try:
        for value in values:  # a broker down meanwhile: sent again (`send_retrying`), within the connect timeout
            await send_retrying(producer, topic, value, key=key, headers=headers,
                                deadline=max(connect_timeout, SEND_DEADLINE))
    finally:
        await producer.stop()


async def send_all(producer: AIOKafkaProducer, topic: str, records: Sequence[tuple[bytes, bytes | None]],
                   partition: int, *, within: float | None = None,
                   acks: list[asyncio.Future[Any]] | None = None) -> None:
    """Send `records` (key, value) to `partition` and wait for every ack; raise the first failure. With `within`, all
    of it within `within` seconds, then TimeoutError: each record's queueing (aiokafka makes a record that does not
    fit in the partition's last batch wait up to its request timeout, 40 s, for that batch to be sent) as well as the
    acks. `acks`, when given, gets each record's ack as the record is queued: how many were, if it is cut short.

    Cut short (that deadline, a caller's, a cancel, a send that raised), nothing more is awaited: the acks not in are
    cancelled (aiokafka still sends their records) and the failed ones retrieved, so nothing is left for asyncio to log
    ("Future exception was never retrieved"). A record whose queueing was cut is in no batch: aiokafka appends a record
    only once it fits, after its wait, with no await between (`MessageAccumulator.add_message`)."""
    acks = [] if acks is None else acks
    try:
        async with asyncio.timeout(within):
            for key, value in records:
                acks.append(await producer.send(topic, value, key=key, partition=partition))
            outcomes = await asyncio.gather(*acks, return_exceptions=True)
    finally:
        for ack in acks:
            if not ack.done():
                ack.cancel()
            elif not ack.cancelled():
                ack.exception()  # retrieved
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
