"""The approvals and operator loops' commit runs in a task of its own, raced against its watch
(responder/service/watch.py `_watching`): a cancel of the loop ends both, neither left pending nor its error unread,
the loop ending cancelled; a commit's error reaches the loop as it is; a consumer given up (`abandon`) ends the commit's
task (`unless_abandoned`), never the loop's."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Awaitable, Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import CommitFailedError, KafkaError

from responder.errors_kafka import CoordinatorDied, CoordinatorLost
from responder.ingest.coordinator import RebuildBudget, commit_unless_dead
from responder.ingest.lost import abandon, unless_abandoned
from responder.service.watch import ConsumerWatch


class _Consumer:
    """A consumer whose commit waits until told (`done`), or raises `error`; cancelled, it says so."""

    _coordinator = None

    def __init__(self, error: BaseException | None = None, cleanup_s: float = 0.0) -> None:
        self.done = asyncio.Event()
        self.error, self.cleanup_s = error, cleanup_s
        self.cancelled = self.returned = False

    async def commit(self, offsets: Any = None) -> None:
        try:
            await self.done.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            if self.cleanup_s:
                await asyncio.sleep(self.cleanup_s)  # as aiokafka's commit may, on its way out
            raise
        if self.error is not None:
            raise self.error
        self.returned = True


def _watcher(watched: Callable[..., Awaitable[None]] | None = None) -> Any:
    """What `_watching` needs of a service: a budget (the consumer polled), its period, and `_watched`."""

    async def quiet(*_: Any) -> None:
        return None

    return SimpleNamespace(_rebuild_budgets={"operator": RebuildBudget()}, commit_watch_s=0.001,
                           _watched=watched or quiet)


def _given_up(consumer: _Consumer) -> tuple[list[bool], Callable[[], Awaitable[None]], Callable[..., Awaitable[None]]]:
    """What the commit said (True: went through, False: given up), a commit through `unless_abandoned`, and a watch
    that gives the consumer up (`abandon`) and raises CoordinatorDied, as `_watched` does."""
    committed: list[bool] = []

    async def commit() -> None:
        committed.append(await unless_abandoned(consumer, consumer.commit()))

    async def lost(*_: Any) -> None:
        cause = CoordinatorLost("its group coordinator unknown for 170 s")
        abandon(consumer, cause)
        raise CoordinatorDied("operator", cause)

    return committed, commit, lost


def _watching(service: Any, consumer: Any, commit: Awaitable[None]) -> Awaitable[None]:
    return ConsumerWatch._watching(service, SimpleNamespace(consumer=consumer), "operator", commit)


def _watches() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name().endswith("commit watch")]


@contextlib.contextmanager
def _unhandled() -> Iterator[list[dict[str, Any]]]:
    """What the loop's exception handler was given ("Task was destroyed but it is pending", "... never retrieved")."""
    loop = asyncio.get_running_loop()
    said: list[dict[str, Any]] = []
    old = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: said.append(context))
    try:
        yield said
        gc.collect()
    finally:
        loop.set_exception_handler(old)


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_loop_cancelled_while_it_commits_ends_cancelled_its_commit_and_watch_ended_and_awaited() -> None:
    """A loop cancelled while it commits ends cancelled, its commit cancelled and watch ended, no stray task left."""
    consumer = _Consumer()
    with _unhandled() as said:
        loop = asyncio.create_task(_watching(_watcher(), consumer, consumer.commit()))
        await asyncio.sleep(0.01)  # committing, watched a few times
        assert len(_watches()) == 1
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop
        assert loop.cancelled()
        assert loop.cancelling() == 1
        assert consumer.cancelled
        assert not _watches()
        await _settle()
    assert said == []
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


async def test_a_loop_cancelled_while_a_commit_takes_its_time_to_end_waits_for_it() -> None:
    """The commit's own way out (aiokafka's) is awaited before the loop ends, as when it ran in the loop's task."""
    consumer = _Consumer(cleanup_s=0.05)
    with _unhandled() as said:
        loop = asyncio.create_task(_watching(_watcher(), consumer, consumer.commit()))
        await asyncio.sleep(0.01)
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
    assert said == []


async def test_a_loop_cancelled_through_its_own_uncaught_cancel_of_the_commit_ends_cancelled() -> None:
    """The commit swallowing nothing: a cancel reaching the loop while it awaits the commit ends both cancelled."""
    consumer = _Consumer()

    async def gives_up_once(*_: Any) -> None:  # the watch ends (a consumer given up elsewhere): the commit goes on
        raise CoordinatorDied("operator", CoordinatorLost("gone"))

    with _unhandled() as said:
        loop = asyncio.create_task(_watching(_watcher(gives_up_once), consumer, consumer.commit()))
        await asyncio.sleep(0.01)  # the watch ended; the loop awaits the commit alone
        assert not _watches()
        assert not loop.done()
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop
        assert loop.cancelling() == 1
        assert consumer.cancelled
    assert said == []


@pytest.mark.parametrize("error", [CommitFailedError("rebalanced"), KafkaError("broker said no"),
                                   RuntimeError("a bug")])
async def test_a_commit_s_error_reaches_the_loop_as_it_is_and_the_watch_ends(error: BaseException) -> None:
    """A commit's error reaches the loop as the same exception and the watch ends, with nothing unhandled."""
    consumer = _Consumer(error=error)
    with _unhandled() as said:
        loop = asyncio.create_task(_watching(_watcher(), consumer, consumer.commit()))
        await asyncio.sleep(0.01)
        consumer.done.set()
        with pytest.raises(type(error)) as raised:
            await loop
        assert raised.value is error
        assert not _watches()
    assert said == []


async def test_a_commit_error_through_commit_unless_dead_is_raised_to_the_loop() -> None:
    """A KafkaError while the coordinator lives: raised by `commit_unless_dead`, as before, into the loop."""
    consumer = _Consumer(error=KafkaError("not the coordinator's death"))
    loop = asyncio.create_task(_watching(_watcher(), consumer, commit_unless_dead(consumer, {})))
    await asyncio.sleep(0.01)
    consumer.done.set()
    with pytest.raises(KafkaError, match="not the coordinator's death"):
        await loop


async def test_a_commit_that_returns_is_awaited_to_its_end_and_the_watch_ended() -> None:
    """A commit that returns under `unless_abandoned` is awaited to its end and the watch ends, nothing unhandled."""
    consumer = _Consumer()
    with _unhandled() as said:
        loop = asyncio.create_task(_watching(_watcher(), consumer, unless_abandoned(consumer, consumer.commit())))
        await asyncio.sleep(0.01)
        consumer.done.set()
        await loop
        assert consumer.returned
        assert not _watches()
    assert said == []


async def test_a_consumer_given_up_ends_the_commit_s_task_never_the_loop_s() -> None:
    """`abandon` cancels `_watching`'s commit task, not the loop's, which goes on to its next poll."""
    consumer = _Consumer()
    committed, commit, lost = _given_up(consumer)

    async def loop_() -> int:
        await _watching(_watcher(lost), consumer, commit())
        await asyncio.sleep(0)  # not cancelled: a cancel of `abandon`'s would land here
        task = asyncio.current_task()
        assert task is not None
        return task.cancelling()

    with _unhandled() as said:
        loop = asyncio.create_task(loop_())
        assert await asyncio.wait_for(loop, 5) == 0
    assert committed == [False]
    assert consumer.cancelled
    assert said == []


async def test_a_consumer_given_up_ends_the_commit_even_with_a_cancel_request_left_in_the_loop() -> None:
    """`abandon` ends the commit as given up even when a Python 3.11 TaskGroup left a cancel request in the loop."""
    consumer = _Consumer()
    committed, commit, lost = _given_up(consumer)

    async def loop_() -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()  # a request left over, as a TaskGroup's
        with contextlib.suppress(asyncio.CancelledError):  # its CancelledError taken, its request not taken back
            await asyncio.sleep(1)
        assert task.cancelling() == 1
        await _watching(_watcher(lost), consumer, commit())

    await asyncio.wait_for(asyncio.create_task(loop_()), 5)
    assert committed == [False]


async def test_a_watch_cancelled_by_another_leaves_the_commit_to_go_on_unwatched() -> None:
    """A watch cancelled by something other than `_watching`, such as a shutdown, is no error: the commit goes on."""
    consumer = _Consumer()
    with _unhandled() as said:
        loop = asyncio.create_task(_watching(_watcher(), consumer, consumer.commit()))
        await asyncio.sleep(0.01)
        (watch,) = _watches()
        watch.cancel()
        await asyncio.sleep(0.01)
        assert not loop.done()  # not a CancelledError raised into a loop nobody cancelled
        consumer.done.set()
        await loop
        assert consumer.returned
    assert said == []
