"""One-off admin calls (`with_admin`, `ensure_topics`): retried on a new client while the cluster is not ready, then
BrokerUnreachable. Starting a client with retry is clients.py's."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import structlog
from aiokafka.errors import KafkaConnectionError, NodeNotReadyError, RequestTimedOutError

from responder.errors import BrokerUnreachable, ConfigError
from responder.ingest.clients import _start_with_retry, fixed_wait

log = structlog.get_logger(__name__)

T = TypeVar("T")

NOT_READY = (NodeNotReadyError, KafkaConnectionError, AttributeError, TimeoutError, RequestTimedOutError)
"""What an admin call raises while a cluster is still starting or does not answer: a KRaft broker can answer the
bootstrap metadata before it knows of any unfenced broker, so the client has no node to ask (NodeNotReadyError, node
id None); a connection is refused; aiokafka reads `cluster.controller` before one is known (AttributeError); a
request to the controller (`create_topics`, `create_partitions`) finds it unreachable for the client's whole
`request_timeout_ms`, 40 s by default (TimeoutError: aiokafka's `async_timeout.timeout` in `_send_request_to_node`,
Python's own on 3.11); or a broker connected to leaves a request unanswered as long (RequestTimedOutError). The last
three count only when aiokafka itself raised them (`not_ready`)."""

_FROM_AIOKAFKA = (AttributeError, TimeoutError, RequestTimedOutError)
_TIMERS = frozenset({"asyncio", "async_timeout"})  # where a timeout is raised on behalf of the code that set it


def _raised_in_aiokafka(exc: BaseException) -> bool:
    """Whether the innermost frame of `exc`'s traceback, past asyncio's and async_timeout's own (a timeout is raised
    in their `__aexit__`, for the code that set it), is in aiokafka's files."""
    files: list[list[str]] = []
    tb = exc.__traceback__
    while tb is not None:
        files.append(tb.tb_frame.f_code.co_filename.replace("\\", "/").split("/"))
        tb = tb.tb_next
    while files and _TIMERS.intersection(files[-1]):
        files.pop()
    return bool(files) and "aiokafka" in files[-1]


def not_ready(exc: BaseException) -> bool:
    """Whether `exc` says the cluster is still starting or did not answer (`NOT_READY`). An AttributeError or a
    timeout counts only when raised inside aiokafka (its admin client's `cluster.controller.nodeId` while no
    controller is known; its own request timeout): one raised by the caller's own code (a bug, or a timeout the
    caller set around its call) is raised at once."""
    if not isinstance(exc, NOT_READY):
        return False
    return not isinstance(exc, _FROM_AIOKAFKA) or _raised_in_aiokafka(exc)


ADMIN_DEADLINE = 15.0
"""Seconds a one-off admin call (`ensure_topics`, `ensure_changelog`, a changelog's growth) has, bootstrap and
retries and a request hung on the controller included. Fixed: RESPONDER_KAFKA_CONNECT_TIMEOUT does not set it, and
its BrokerUnreachable says so."""


async def with_admin(bootstrap: str, call: Callable[[Any], Awaitable[T]], *,
                     options: Mapping[str, Any] | None = None, deadline: float | None = None,
                     wait_set_by: str | None = None) -> T:
    """`call(admin)` on a new admin client, closed after it. While the cluster is not ready (`NOT_READY`) the call
    is made again on another new client, so with fresh metadata, until `deadline` seconds (`ADMIN_DEADLINE`) have
    passed; then BrokerUnreachable from the last error, as when no broker answers (exit 3 at a first start, a rejoin
    once Kafka was reached: responder/service/rejoin.py), not the raw error (exit 1). Any other error is raised at
    once. A start or a call still running at the deadline (a bootstrap or a request to an unreachable controller
    waits the client's request timeout, 40 s by default) is cut there: BrokerUnreachable, its TimeoutError the
    cause. Its message names what sets the deadline: `wait_set_by` (a setting), else this fixed deadline."""
    from aiokafka.admin import AIOKafkaAdminClient

    deadline = ADMIN_DEADLINE if deadline is None else deadline
    set_by = wait_set_by or fixed_wait("this admin call", deadline)
    loop, delay = asyncio.get_running_loop(), 0.1
    until = loop.time() + deadline  # the whole call's: each start's retries, the cut (`timeout_at`) and the backoff
    while True:
        admin, started = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **(options or {})), False
        timer = asyncio.timeout_at(until)  # the start too: a bootstrap unanswered (a broker stopped) waits 40 s
        try:
            async with timer:
                await _start_with_retry(admin, max(1.0, round(until - loop.time(), 1)), wait_set_by=set_by)
                started = True
                return await call(admin)
        except NOT_READY as exc:
            if timer.expired() and not started:
                raise BrokerUnreachable(
                    f"cannot reach Kafka at {bootstrap} (AIOKafkaAdminClient): no answer in {deadline:g}s: "
                    f"TimeoutError: its bootstrap was unanswered at the deadline (check RESPONDER_KAFKA_BOOTSTRAP; "
                    f"{set_by} sets the wait)") from exc
            if not (timer.expired() or not_ready(exc)):
                raise
            if timer.expired() or loop.time() + delay > until:
                why = "TimeoutError: its request was unanswered at the deadline" if timer.expired() else \
                    f"{type(exc).__name__}: {exc}"
                raise BrokerUnreachable(
                    f"cannot talk to Kafka at {bootstrap} (AIOKafkaAdminClient): it answered, but was not ready within "
                    f"{deadline:g}s: {why} (a cluster starting or restarting, or a broker whose advertised address "
                    f"cannot be reached from here; {set_by} sets the wait)") from exc
            log.warning("kafka_admin_not_ready", bootstrap=bootstrap, error=repr(exc), retry_in_s=delay)
        finally:
            await admin.close()
        await asyncio.sleep(delay)
        delay = min(1.0, delay * 2)


BROKER_DEFAULT = -1
"""The replication factor that asks the broker for its own `default.replication.factor` (KIP-464, Kafka 2.4+; the
embedded Tansu broker takes it too): a topic the service creates is replicated as the cluster's operator set, never
1 on a cluster of 3 (`tests/integration/test_operator_topics.py`)."""


def new_topic(name: str, partitions: int, replication: int = BROKER_DEFAULT,
              configs: Mapping[str, str] | None = None) -> Any:
    """aiokafka's NewTopic. It refuses replication -1 unless `replica_assignments` is given and not None: an empty
    one sends no assignment, so the broker places the replicas, as it does for any other count."""
    from aiokafka.admin import NewTopic

    return NewTopic(name, partitions, replication, replica_assignments={} if replication == BROKER_DEFAULT else None,
                    topic_configs=dict(configs or {}))


async def ensure_topics(bootstrap: str, names: Sequence[str], partitions: int = 3, *,
                        options: Mapping[str, Any] | None = None, replication: int = BROKER_DEFAULT,
                        configs: Mapping[str, str] | None = None) -> None:
    """Create topics that do not exist yet, with topic `configs` and the broker's default replication factor unless
    `replication` says otherwise (any Kafka; an existing topic is left alone, its configuration too); waits out a
    cluster that is still starting (`with_admin`)."""

    async def create(admin: Any) -> None:  # the topics are listed again on every attempt
        existing = set(await admin.list_topics())
        missing = [new_topic(n, partitions, replication, configs) for n in names if n not in existing]
        if missing:
            refused(await admin.create_topics(missing))

    await with_admin(bootstrap, create, options=options)


def refused(response: Any) -> None:
    """ConfigError naming each topic a CreateTopics answer refused for good (a replication factor above the brokers,
    or -1 on a broker before 2.4; no authorisation; a bad config): the topic does not exist, and a service that went
    on would wait on it. One that exists already (36) is not refused; a retriable refusal (the controller moving) is
    logged, the next start or call tries again."""
    from aiokafka.errors import for_code

    final: list[str] = []
    for topic, code, *message in getattr(response, "topic_errors", ()):
        if code in (0, TOPIC_EXISTS):
            continue
        error = for_code(code)
        if error.retriable:
            log.warning("kafka_topic_not_created", topic=topic, error=error.__name__)
            continue
        final.append(f"{topic}: {error.__name__} ({code}){': ' + message[0] if message and message[0] else ''}")
    if final:
        raise ConfigError(f"Kafka refused to create topics: {'; '.join(final)} (create them by hand, "
                          f"deploy/topics.txt lists each with its partitions and configuration)")


TOPIC_EXISTS = 36
