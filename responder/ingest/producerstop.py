"""An aiokafka producer closed within a deadline (`stop_producer`), and what a stop cut short left ended
(`_cut_short`): its stop can wait for good on a transactional request whose coordinator is lost. What a closed
producer left failed is retrieved (`_fail_all`, `_transaction_end_seen`): asyncio logs nothing that reads as a bug."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog
from aiokafka.errors import KafkaError

log = structlog.get_logger(__name__)


async def stop_producer(producer: Any, deadline: float, **context: Any) -> bool:
    """Close an aiokafka producer within `deadline` s; whether its stop finished (False: cut short or failed, logged).

    aiokafka 0.14's stop waits for its batches' delivery, then cancels its sender routine, which awaits its
    transactional request under way, and such a request looks for its coordinator for ever (`Sender._find_coordinator`):
    a TxnOffsetCommit whose group coordinator is lost kept a producer's stop, and a partition's hand-over or the
    service's teardown, waiting for good (tests/unit/test_transactions_lost_group.py). Past the deadline the stop is
    cancelled and what it left is ended (`_cut_short`). A cancel of the caller ends what the stop left too, then is
    raised (`asyncio.timeout` tells it from the deadline's by the task's cancel requests:
    tests/unit/test_producer_stop.py)."""
    try:
        try:
            async with asyncio.timeout(deadline):
                await producer.stop()
        except asyncio.CancelledError:  # the caller gave up (a revocation cut): the stop began, so a second one would
            await _cut_short(producer)  # do nothing; what it left (its connections) is ended now, then the cancel
            raise
        except TimeoutError:
            log.error("kafka_producer_stop_cut_short", waited_s=deadline, **context,
                      detail="its batches or its transactional request wait for Kafka (a lost coordinator?): cancelled")
        except KafkaError as exc:  # its sender's request failed as the stop awaited it: the connections are still open
            log.warning("kafka_producer_stop_failed", error=f"{type(exc).__name__}: {exc}", **context)
        else:
            return True
        await _cut_short(producer)
        return False
    finally:
        _transaction_end_seen(producer)


def _transaction_end_seen(producer: Any) -> None:
    """The end of a closed producer's transaction, which nothing will await now: its failure retrieved (aiokafka 0.12
    to 0.14 fail it when the sender routine dies, and asyncio logs "Future exception was never retrieved" for it once
    the producer is freed: a dead producer's partition, revoked before its rejoin)."""
    waiter = getattr(getattr(producer, "_txn_manager", None), "_transaction_waiter", None)
    if isinstance(waiter, asyncio.Future) and waiter.done() and not waiter.cancelled():
        waiter.exception()  # retrieved


async def _cut_short(producer: Any) -> None:
    """End what a stop cut short (or failed) left: the sender routine (a stop cut short while its batches waited
    never cancelled it; cancelled, it awaits its request under way, which the next cancel ends), the batches it will
    never deliver (failed, as aiokafka fails them when its sender dies: the stop's flush ends), the connections."""
    sender = getattr(getattr(producer, "_sender", None), "sender_task", None)
    for _ in range(3):
        if sender is None or sender.done():
            break
        sender.cancel()
        await asyncio.wait([sender], timeout=1.0)
    accumulator = getattr(producer, "_message_accumulator", None)
    if accumulator is not None:
        _fail_all(accumulator, KafkaError("the producer's stop was cut short"))
    client = getattr(producer, "client", None)
    if client is not None:
        with contextlib.suppress(KafkaError, OSError):
            await client.close()


def _fail_all(accumulator: Any, exc: KafkaError) -> None:
    """Fail every batch as aiokafka's `fail_all` does, leaving asyncio nothing to log as a bug (aiokafka 0.12 to
    0.14): a batch never taken by the sender (its partition waiting for its addition to the transaction) has a drain
    waiter nobody awaits, its exception "never retrieved"; a batch queued again after a retriable error is no longer
    among the pending batches, from which the callback its first send set removes it (a KeyError "in callback")."""
    queued = [batch for batches in accumulator._batches.values() for batch in batches]
    accumulator._pending_batches.update(batch for batch in queued if batch.retry_count)  # where that callback looks
    batches = [*queued, *accumulator._pending_batches]
    accumulator.fail_all(exc)
    for batch in batches:
        waiter = batch._drain_waiter
        if waiter.done() and not waiter.cancelled():
            waiter.exception()  # retrieved
