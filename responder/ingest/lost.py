"""A consumer out of its group while aiokafka's coordination task goes on looking (`in_group`), given up (`abandon`).

aiokafka 0.14 marks a group's coordinator dead when a heartbeat's session expires (or the coordinator answers
that it is not), and its coordination task then looks for it again, for as long as it takes: nothing surfaces to
the application. A joined member keeps its partitions meanwhile (their records still come, their commits wait for
the coordinator for ever); a consumer assigned by hand reads nothing. The service gives such a consumer up after a
bound (responder/service/consumers.py) and rebuilds it as if its coordination task had died
(responder/ingest/coordinator.py): `abandon` makes it look dead to the rest (`given_up`), and ends a commit of
its that waits for the coordinator (`unless_abandoned`), which would hold up the hand-over of its partitions.
Only while its cluster answers (`cluster_answers`): with every broker down, aiokafka marks the coordinator dead just
the same, and a rebuild would only reach no broker; the consumer then waits for Kafka, as aiokafka does.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable
from typing import Any

from aiokafka.consumer.subscription_state import ManualSubscription
from aiokafka.errors import KafkaError

_abandoned: weakref.WeakKeyDictionary[Any, BaseException] = weakref.WeakKeyDictionary()  # consumer -> cause
_committing: weakref.WeakKeyDictionary[Any, set[asyncio.Task[Any]]] = weakref.WeakKeyDictionary()  # in a commit


def abandon(consumer: Any, cause: BaseException) -> None:
    """Treat `consumer` as if its coordination task had died of `cause` (it goes on looking for its coordinator):
    `coordinator_death` returns `cause`, its polls raise CoordinatorDied, its commits are skipped, and one under way,
    waiting in aiokafka for the coordinator, ends (`unless_abandoned`: the task awaiting it is cancelled, for the
    approvals and operator loops the commit's own, `ConsumerWatch._watching`)."""
    if consumer in _abandoned:
        return
    _abandoned[consumer] = cause
    for task in _committing.pop(consumer, set()):
        task.cancel()  # `unless_abandoned` returns False to it


def given_up(consumer: Any) -> BaseException | None:
    """The cause `consumer` was given up for (`abandon`), or None."""
    return _abandoned.get(consumer)


def in_group(consumer: Any) -> bool:
    """Whether the consumer is in touch with its group: its coordinator known (or it has no group) and, when the group
    assigns its partitions (it subscribed), that assignment in force, no rebalance under way. A joined member whose
    coordinator was marked dead (a heartbeat session expired) keeps its partitions and looks for it, for ever."""
    coordinator = getattr(consumer, "_coordinator", None)
    if coordinator is None or not hasattr(coordinator, "coordinator_id"):
        return True  # no group
    if coordinator.coordinator_id is None:
        return False
    state = consumer._subscription
    subscription = state.subscription
    if subscription is None or isinstance(subscription, ManualSubscription):
        return True  # assigned by hand (or nothing yet): the coordinator is all it needs
    assignment = subscription.assignment
    return bool(subscription.active and not state.reassignment_in_progress and assignment is not None
                and assignment.active)


async def unless_abandoned(consumer: Any, commit: Awaitable[None]) -> bool:
    """Await `commit`: True once it returned, False when `consumer` was given up first (`abandon` cancels the task
    awaiting it): aiokafka's commit waits for a lost coordinator for ever, and would hold up the hand-over of its
    partitions. It runs in the caller's task, which `abandon` cancels: whichever awaits the commit; for the approvals
    and operator loops, the task of its own their commit runs in beside its watch (`ConsumerWatch._watching`,
    responder/service/watch.py), never the loop's, which awaits it: a commit that went through is counted before the
    poll loop sees a death after. Any other cancel of that task (the loop's, passed on by `_watching`) is raised."""
    task = asyncio.current_task()
    if task is None:  # not in a task (no loop's coroutine): nothing to cancel it
        await commit
        return True
    waiting = _committing.setdefault(consumer, set())
    waiting.add(task)
    try:
        await commit
    except asyncio.CancelledError:
        if given_up(consumer) is None or task.cancelling() != 1:
            raise  # not (only) `abandon`'s cancellation: the caller's own
        task.uncancel()
        return False
    finally:
        waiting.discard(task)
    return True


async def cluster_answers(consumer: Any, timeout: float) -> bool:
    """Whether the consumer's Kafka cluster answers a metadata request within `timeout` s, asked through the
    consumer's own client (aiokafka's `fetch_all_metadata`, as `consumer.topics()` does: the brokers the client knows
    are asked in turn, over its connections, into a metadata object of its own, so the client's metadata is left as
    it is; cancelled past the timeout, a request under way stays queued on its connection, its late answer dropped).
    A consumer without a client (no group's, a fake's) has nothing to ask: True."""
    client = getattr(consumer, "_client", None)
    if client is None:
        return True
    try:
        await asyncio.wait_for(client.fetch_all_metadata(), timeout)
    except (KafkaError, OSError, TimeoutError):
        return False
    return True
