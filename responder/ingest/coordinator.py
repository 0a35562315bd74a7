"""A consumer whose aiokafka group coordinator died: found (`coordinator_death`), told (`CoordinatorDied`), replaced.

aiokafka 0.14 runs a group consumer's membership (coordinator lookup, join, heartbeats, offset commits) in one
background task. An unexpected exception there ends that task with `KafkaError('Unexpected error during
coordination …')`, and aiokafka never starts it again: every later `getmany`, `commit` and `position` raises that
error, for good. Seen with a partition leader SIGKILLed on 3 brokers (tests/faults/test_kafka_cluster.py): a manual
assignment changed while the task waited for the coordinator (`AssertionError`). The service then closes the
consumer and creates it again from the same arguments (`fresh`); the new one reads on from the committed offsets.
Delivery stays at-least-once and the step keys keep each effect once (responder/service/consumers.py). A consumer
out of its group for too long while its task goes on looking (responder/ingest/lost.py, `RebuildBudget.out_of_group`)
is given up and replaced the same way.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import structlog
from aiokafka.errors import KafkaError

from responder.errors_kafka import CoordinatorDied
from responder.ingest.clients import stop_consumer
from responder.ingest.lost import given_up, unless_abandoned
from responder.ingest.unreadable import positions

log = structlog.get_logger(__name__)

T = TypeVar("T")


def coordinator_death(consumer: Any) -> BaseException | None:
    """What ended `consumer`'s coordination task (or the cause it was given up for: `abandon`), or None: it runs, was
    closed on purpose, or there is none (a consumer without a group, a fake)."""
    lost = given_up(consumer)
    if lost is not None:
        return lost
    coordinator = getattr(consumer, "_coordinator", None)
    task = getattr(coordinator, "_coordination_task", None)
    if not isinstance(task, asyncio.Future) or not task.done() or task.cancelled():
        return None
    closing = getattr(coordinator, "_closing", None)
    if isinstance(closing, asyncio.Future) and closing.done():
        return None  # stopped by us
    return task.exception()  # retrieved: no "Task exception was never retrieved" either


def coordinator_ready(consumer: Any) -> bool:
    """Whether the consumer's group coordinator is known and no lookup is under way or about to return (or it has no
    group). A manual assignment changed while the coordination task waits in `ensure_coordinator_known` fails
    aiokafka's `assert assignment.active` and kills that task. It may wait there on the lookup lock after another
    task's lookup (an offset commit or fetch) found the coordinator: that lock released to it, it has not run yet."""
    coordinator = getattr(consumer, "_coordinator", None)
    if coordinator is None or not hasattr(coordinator, "coordinator_id"):
        return True  # no group: nothing races
    lock = getattr(coordinator, "_coordinator_lookup_lock", None)
    if isinstance(lock, asyncio.Lock) and (lock.locked() or getattr(lock, "_waiters", None)):
        return False  # a lookup runs, or a task woken from the lock has not taken it yet
    return coordinator.coordinator_id is not None and coordinator_death(consumer) is None


async def polled(consumer: Any, name: str, poll: Callable[[], Awaitable[T]]) -> T:
    """`poll()`, or CoordinatorDied (naming the consumer `name`) when the consumer's coordinator is dead, before
    the poll or as the reason it failed."""
    died = coordinator_death(consumer)
    if died is not None:
        raise CoordinatorDied(name, died)
    try:
        return await poll()
    except Exception as exc:
        died = coordinator_death(consumer)
        if died is None:
            raise
        raise CoordinatorDied(name, died) from exc


async def commit_unless_dead(consumer: Any, offsets: Mapping[Any, int]) -> bool:
    """Commit `offsets`; False (logged) when the consumer's coordinator is dead, before or during the commit: the
    rebuilt consumer reads those records again, and the step keys deduplicate them. Any other error is raised."""
    try:
        if coordinator_death(consumer) is None and await unless_abandoned(consumer, consumer.commit(dict(offsets))):
            return True
    except KafkaError:
        if coordinator_death(consumer) is None:
            raise
    log.warning("offset_commit_skipped", reason="group coordinator died", partitions=len(offsets))
    return False


async def fresh(old: Any, make: Callable[[], T]) -> T:
    """Close `old` (its errors logged: it is dead already), then a new consumer from `make()`, not started."""
    try:
        await stop_consumer(old)
    except Exception as exc:  # noqa: BLE001 - a dead consumer may fail to close; the new one is what matters
        log.warning("kafka_consumer_close_failed", error=f"{type(exc).__name__}: {exc}")
    return make()


def caught_up(consumer: Any, ends: Mapping[Any, int] | None = None) -> bool:
    """Whether the consumer is live and has read all there is: its group coordinator known and its coordination task
    running (`coordinator_ready`), its assignment in force (joined, no rebalance under way; or assigned by hand), and
    each assigned partition fetched from (its high watermark known), read up to it, and not paused. A member that
    was given no partition is caught up once it joined. A consumer still looking for its coordinator, or whose task
    died, is not. `ends`: read up to these offsets instead (0 for a partition not in them), not the high watermark."""
    if not coordinator_ready(consumer):
        return False
    state = consumer._subscription
    if state.subscription is None or not state.subscription.active or state.reassignment_in_progress:
        return False
    assignment, standing = positions(consumer)
    if assignment is None or not assignment.active or consumer.paused():
        return False
    for tp in assignment.tps:
        high = consumer.highwater(tp) if ends is None else ends.get(tp, 0)
        if high is None or tp not in standing or standing[tp] < high:
            return False
    return True


REBUILDS = 5
"""Rebuilds of one consumer allowed without progress in between, within `WINDOW_S`; one more stops the service."""
CEILING = 20
"""Rebuilds of one consumer allowed within `WINDOW_S` whatever progress came between: a rolling restart kills a
group's coordinator once per broker that holds it, a handful; a consumer that loses it each time soon after it caught
up (or committed) is broken, and would rejoin its group, and rebalance it, for ever."""
WINDOW_S = 600.0


class RebuildBudget:
    """One consumer's rebuilds without progress, within `window` seconds: how long to wait before the next. Progress
    is a commit, or a rebuilt consumer found live and caught up (`caught_up`) before it read any record: a quiet
    consumer, such as the operator requests one, has nothing to commit, and a rolling restart of the brokers may kill
    its coordinator once per broker, however fast the brokers go. A rebuilt consumer that never finds its
    coordinator, loses it before it joined, or reads records it never commits, makes none. Past `ceiling` rebuilds
    within the window, progress or not, it is refused too (`crowded`)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, *, limit: int = REBUILDS,
                 window: float = WINDOW_S, backoff: float = 1.0, backoff_max: float = 30.0,
                 ceiling: int = CEILING) -> None:
        self.clock, self.limit, self.window, self.ceiling = clock, limit, window, ceiling
        self.backoff, self.backoff_max = backoff, backoff_max
        self._at: deque[float] = deque()
        self._all: deque[float] = deque()  # every rebuild within the window, progress or not
        self._commits = 0
        self._read = False  # the consumer rebuilt last returned records (its progress is then a commit)
        self._out: float | None = None  # since when the consumer built last was out of its group at every poll
        self.silent: float | None = None  # when Kafka last did not answer, the consumer out of its group past the bound
        self.restarted = False  # its bound started again once Kafka answered (`heard`), this stretch out of its group

    @property
    def count(self) -> int:
        """The rebuilds counted now."""
        return len(self._at)

    @property
    def crowded(self) -> int:
        """The rebuilds within the window, progress or not, when they reached `ceiling` (else 0)."""
        return len(self._all) if len(self._all) >= self.ceiling else 0

    def polled(self, records: bool, live: Callable[[], bool], commits: int | None = None) -> None:
        """A poll of the consumer rebuilt last (`records`: it returned some; `commits`: its successful commits so
        far). Found live and caught up (`live()`) before any record came, or committed since, it made progress: its
        rebuilds count from zero (`count` 0: it settled)."""
        self._read |= records
        if commits is not None and commits != self._commits:
            self._commits = commits
            self._at.clear()
        if self._at and not self._read and live():
            self._at.clear()

    def out_of_group(self, in_group: bool, bound: float) -> float | None:
        """A poll found the consumer built last in its group or not (`in_group`): the seconds it has been out of it
        at every poll since, once past `bound`; else None. Polls alone observe it: a quiet one costs nothing more. In
        it, its stretch out of it ends: Kafka's silence and the bound's restart (`heard`) are forgotten."""
        if in_group:
            self._out, self.silent, self.restarted = None, None, False
            return None
        now = self.clock()
        if self._out is None:
            self._out = now
        return now - self._out if now - self._out > bound else None

    def out_s(self) -> float:
        """The seconds the consumer built last has been out of its group at every poll (0: in it)."""
        return 0.0 if self._out is None else self.clock() - self._out

    def heard(self) -> bool:
        """Kafka answers again after it did not (`silent`): True when the bound starts again from now, for the consumer
        to find its group again as after a start (a restarted broker loads the group first) before it is given up. Once
        a stretch out of its group (until it is back in it, or rebuilt): False when it did already, as a flaky probe (a
        broker dropping packets: `fetch_all_metadata` asks one at a time) would put a rebuild off bound after bound."""
        self.silent = None
        if self.restarted:
            return False
        self._out, self.restarted = self.clock(), True
        return True

    def seen(self, commits: int) -> None:
        """The consumer's successful commits so far, none of them progress: those made while it was rebuilt (the chunks
        in hand committed as its partitions were handed over) are the old consumer's, not the new one's."""
        self._commits = commits

    def next(self, commits: int) -> float | None:
        """Count one more rebuild (`commits`: the consumer's successful commits so far): the seconds to wait before
        it, or None when the limit is reached (not counted)."""
        now = self.clock()
        if commits != self._commits:
            self._commits = commits  # it committed since: progress
            self._at.clear()
        for at in (self._at, self._all):
            while at and now - at[0] > self.window:
                at.popleft()
        if len(self._at) >= self.limit or self.crowded:
            return None
        self._at.append(now)
        self._all.append(now)
        self._read, self._out, self.silent, self.restarted = False, None, None, False
        return 0.0 if len(self._at) == 1 else min(self.backoff_max, self.backoff * 2 ** (len(self._at) - 2))
