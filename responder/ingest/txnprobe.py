"""Whether a broker runs Kafka transactions for aiokafka (Apache Kafka does; Tansu does not): a probe producer
initialises a transactional id; `choose` makes of it what `kafka_transactions` asks (responder/ingest/transactions.py
writes in them).

Only the broker's definitive answer is a "no" (`UNSUPPORTED`, said `CONFIRMATIONS` times in a row): what Tansu gives,
and a broker without the API. An attempt that gets no answer (no broker, a timeout, no transaction coordinator yet,
anything aiokafka marks retriable, any other error) is tried again until the connect deadline, then
`BrokerUnreachable`, as for a Kafka unreachable at start: until 2026-12-07 any of them was taken for "no
transactions", so a replica started (or rebuilt after a rejoin) during a hiccup of Apache Kafka ran without them,
fencing nothing and fenced by nothing, with one info line saying so. A transactional id the principal may not use
(`REFUSED`) is a bad setting: ConfigError, never a silent fallback. A cancel is never an answer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    IncompatibleBrokerVersion,
    KafkaError,
    TransactionalIdAuthorizationFailed,
    UnknownError,
    UnsupportedVersionError,
)
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_delay, wait_exponential_jitter
from tenacity.wait import wait_base

from responder.errors import BrokerUnreachable, ConfigError
from responder.ingest.clients import CONNECT_TIMEOUT
from responder.ingest.transactions import Transactions

log = structlog.get_logger(__name__)

PROBE_S = 15.0
"""One attempt's bound: its start (bootstrap and InitProducerId, which aiokafka waits for with no limit) and its
empty transaction."""

BACKOFF: wait_base = wait_exponential_jitter(initial=0.1, max=2.0)
"""Between two attempts: the connect retry's (responder/ingest/clients.py), 0.1 s doubling to 2 s, plus up to 1 s."""

UNSUPPORTED = (UnknownError, UnsupportedVersionError, IncompatibleBrokerVersion)
"""The broker's definitive "no transactions for aiokafka": Tansu answers aiokafka's InitProducerId (v0, the only one
aiokafka 0.12 to 0.14 sends) with UNKNOWN_SERVER_ERROR within 5 ms of `start()` (UnknownError,
tests/integration/test_txnprobe.py); a broker without the API or that version, UnsupportedVersionError or aiokafka's
IncompatibleBrokerVersion."""

CONFIRMATIONS = 3
"""A "no" counts once the broker said it this many times in a row, `CONFIRM_S` apart: Tansu answers so at once, every
time; Apache Kafka may answer one InitProducerId UNKNOWN_SERVER_ERROR too (a transaction log write that failed), and
that one hiccup must not turn a replica's fencing off."""

CONFIRM_S = 0.1  # between two askings of a "no"

REFUSED = (TransactionalIdAuthorizationFailed, ClusterAuthorizationFailedError)
"""An ACL: the broker runs transactions, this principal may not use the transactional id. Neither "no" nor transient."""


def _answer(exc: BaseException) -> BaseException:
    """The error that decides: aiokafka wraps a failed FindCoordinator in a bare KafkaError, its cause the broker's."""
    while type(exc) is KafkaError and exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def _line(exc: BaseException) -> str:
    """`Name: text`, once (aiokafka's errors start their text with their name)."""
    name, text = type(exc).__name__, str(exc)
    return text if text.startswith(name) else f"{name}: {text}"


async def _attempt(bootstrap: str, group_id: str, options: Mapping[str, Any] | None, timeout: float) -> None:
    """One probe: a transactional producer's start and an empty transaction, within `timeout`; raises what it met."""
    probe = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"{group_id}.probe",
                             request_timeout_ms=int(timeout * 1000), **(options or {}))
    try:
        async with asyncio.timeout(timeout):
            await probe.start()
            async with probe.transaction():
                pass
    finally:
        with contextlib.suppress(KafkaError, OSError):
            await probe.stop()


async def unsupported(bootstrap: str, group_id: str, options: Mapping[str, Any] | None = None, *,
                      timeout: float = PROBE_S, deadline: float = 30.0,
                      wait_set_by: str = CONNECT_TIMEOUT) -> str | None:
    """None when the broker runs transactions for aiokafka; else its definitive "no" (the error it answered, the same
    `CONFIRMATIONS` times in a row, `CONFIRM_S` apart: a single one may be Apache Kafka's hiccup).

    An attempt with no answer is logged (`kafka_transactions_probe_failed`, a warning) and tried again after a
    jittered backoff (0.1 s to 2 s) until `deadline` seconds have passed (RESPONDER_KAFKA_CONNECT_TIMEOUT for the
    service: `wait_set_by` names it); an attempt under way keeps its own `timeout`. Then BrokerUnreachable with the last
    error. A refused transactional id is a ConfigError naming the ACL, or the opt-out."""

    def failed(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if nos:  # a "no" asked again (`CONFIRMATIONS`): no failure
            log.debug("kafka_transactions_no_confirming", bootstrap=bootstrap, said=nos)
            return
        log.warning("kafka_transactions_probe_failed", bootstrap=bootstrap, attempt=state.attempt_number,
                    error=_line(exc) if exc else "", waited_s=round(state.seconds_since_start or 0.0, 2))

    nos = 0  # the broker's "no" said in a row (`CONFIRMATIONS`)

    def again(exc: BaseException) -> bool:
        nonlocal nos
        if not isinstance(exc, Exception):  # a cancel (or an exit) is never an answer: it goes on at once
            return False
        answer = _answer(exc)
        nos = nos + 1 if isinstance(answer, UNSUPPORTED) else 0  # none of the broker's: no answer, tried again
        return not isinstance(answer, UNSUPPORTED + REFUSED) or 0 < nos < CONFIRMATIONS

    def wait(state: RetryCallState) -> float:  # never past the deadline: the last attempt starts at it
        pause = CONFIRM_S if nos else BACKOFF(state)
        return pause if nos else max(0.0, min(pause, deadline - (state.seconds_since_start or 0.0)))

    def stop(state: RetryCallState) -> bool:  # a "no" being confirmed is asked again past the deadline too
        return bool(stop_after_delay(deadline)(state)) and not 0 < nos < CONFIRMATIONS

    retrying = AsyncRetrying(retry=retry_if_exception(again), stop=stop, wait=wait, after=failed, reraise=True,
                             sleep=_sleep)
    try:
        await retrying(_attempt, bootstrap, group_id, options, timeout)
    except Exception as exc:  # every error is sorted here: a "no", a refusal, or no answer
        answer = _answer(exc)
        if isinstance(answer, UNSUPPORTED) and nos >= CONFIRMATIONS:
            return _line(answer)
        if isinstance(answer, REFUSED):
            raise _refused(bootstrap, group_id, answer) from exc
        raise BrokerUnreachable(
            f"cannot reach Kafka at {bootstrap} (its transactions probe): no answer in {deadline:g}s: {_line(exc)} "
            f"(check RESPONDER_KAFKA_BOOTSTRAP; {wait_set_by} sets the wait; a cluster that answers but has no "
            "transaction coordinator needs `__transaction_state` to have its replicas, transaction.state.log."
            "replication.factor and min.isr, or RESPONDER_KAFKA_TRANSACTIONS=off)") from exc
    return None


async def _sleep(seconds: float) -> None:
    """The probe's wait between two attempts (a test records them)."""
    await asyncio.sleep(seconds)


def _refused(bootstrap: str, group_id: str, answer: BaseException) -> ConfigError:
    """The bad setting an ACL refusing the probe is: what to grant, or the opt-out."""
    grant = ("IDEMPOTENT_WRITE on the Cluster resource (a transactional producer needs it on older brokers)"
             if isinstance(answer, ClusterAuthorizationFailedError) else
             f"WRITE and DESCRIBE on the TransactionalId resources prefixed {group_id}. (the probe's {group_id}.probe, "
             f"the changelog's {group_id}.<changelog topic>.<partition>)")
    return ConfigError(f"Kafka at {bootstrap} refuses this principal the transactional id {group_id}.probe "
                       f"({_line(answer)}): grant it {grant}, or set RESPONDER_KAFKA_TRANSACTIONS=off to run without "
                       "transactions, so without fencing a zombie replica (docs/fleet.md)")


async def supported(bootstrap: str, group_id: str, options: Mapping[str, Any] | None = None, *,
                    timeout: float = PROBE_S, deadline: float = 30.0) -> bool:
    """Whether the broker runs transactions for aiokafka (`unsupported`'s errors raised)."""
    return await unsupported(bootstrap, group_id, options, timeout=timeout, deadline=deadline) is None


async def choose(mode: str, bootstrap: str, topic: str, group_id: str, *, options: Mapping[str, Any] | None = None,
                 deadline: float = 30.0, wait_set_by: str = CONNECT_TIMEOUT) -> Transactions | None:
    """`kafka_transactions`: off = none; on = required (a broker's "no" is a ConfigError); auto = probed, a broker's
    "no" logged as a warning with its answer. With on or auto, no answer by `deadline` is BrokerUnreachable, a refused
    transactional id a ConfigError (`unsupported`)."""
    if mode == "off":
        log.info("kafka_transactions", enabled=False, mode=mode)
        return None
    answer = await unsupported(bootstrap, group_id, options, deadline=deadline, wait_set_by=wait_set_by)
    if answer is None:
        log.info("kafka_transactions", enabled=True, mode=mode,
                 detail="changelog and offsets in one transaction; a zombie replica is fenced")
        return Transactions(bootstrap, topic, group_id, options=options)
    if mode == "on":
        raise ConfigError(f"RESPONDER_KAFKA_TRANSACTIONS=on: the broker at {bootstrap} does not run Kafka "
                          f"transactions for aiokafka ({answer}; Tansu does not); set it to auto or off")
    log.warning("kafka_transactions", enabled=False, mode=mode, reason=answer,
                detail="the broker has no transactions for aiokafka: at-least-once with idempotent steps, no zombie "
                       "fencing (docs/fleet.md)")
    return None
