"""`in_order` and cancellation: a cancel of the caller from outside (its `asyncio.timeout`, a shutdown) always ends it
cancelled, even while it handles a read's failure; a read cancelled when nobody asked raises ReadCancelled whether it
runs alone (in the caller's task) or among several; a read answering in its task's first step (an eager task
factory) stops the reads it makes unneeded as one answering later does (responder/engine/inorder.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from responder.engine.inorder import in_order
from responder.errors import ReadCancelled
from tests.guard_kit import let_tasks_run
from tests.inorder_kit import eager_factory


def _refuses(hit: str | None) -> bool:
    return hit is not None


async def _stray() -> str | None:
    """A read ending in a CancelledError nobody asked for (as a library's inner task's, raised into it)."""
    await asyncio.sleep(0)
    raise asyncio.CancelledError


async def _failing() -> str | None:
    await asyncio.sleep(0)
    raise ValueError("the read failed")


def _slow(cleaned: asyncio.Event, error: BaseException | None = None) -> Callable[[], Awaitable[str | None]]:
    """A read that never answers; cancelled, it waits for `cleaned`, then ends cancelled (or raises `error`)."""
    async def read() -> str | None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await cleaned.wait()
            if error is not None:
                raise error from None
            raise
        return None
    return read


async def _deadline_caller(reads: list[Callable[[], Awaitable[str | None]]],
                           timeouts: list[asyncio.Timeout]) -> tuple[str, int]:
    """in_order within an `asyncio.timeout` the test expires (`timeouts`): how it ended, and the cancel requests
    left in the task."""
    try:
        async with asyncio.timeout(None) as timeout:
            timeouts.append(timeout)
            await in_order(reads, _refuses)
        ended = "answered"
    except TimeoutError:
        ended = "TimeoutError"
    except Exception as exc:  # noqa: BLE001 - what it ended with is the test's answer
        ended = type(exc).__name__
    task = asyncio.current_task()
    assert task is not None
    return ended, task.cancelling()


def _expire(timeout: asyncio.Timeout) -> None:
    timeout.reschedule(asyncio.get_running_loop().time())


def test_the_callers_deadline_while_a_failed_reads_others_end_is_a_timeout_error() -> None:
    """The caller's timeout expiring while in_order awaits cancelled reads after a failure raises TimeoutError."""
    async def main() -> tuple[str, int]:
        cleaned, timeouts = asyncio.Event(), []
        task = asyncio.create_task(_deadline_caller([_failing, _slow(cleaned)], timeouts))
        await let_tasks_run()  # the first read failed; the second, cancelled, cleans up
        _expire(timeouts[0])
        await let_tasks_run()
        cleaned.set()
        return await task

    assert asyncio.run(main()) == ("TimeoutError", 0)


def test_the_callers_deadline_before_a_cancelled_read_fails_is_a_timeout_error() -> None:
    """The caller's deadline cancelling reads, one failing as it ends, still raises TimeoutError, no cancel left."""
    async def main() -> tuple[str, int]:
        cleaned, timeouts = asyncio.Event(), []
        reads = [_slow(cleaned, RuntimeError("cleanup failed")), _slow(cleaned)]
        task = asyncio.create_task(_deadline_caller(reads, timeouts))
        await let_tasks_run()
        _expire(timeouts[0])
        await let_tasks_run()
        cleaned.set()
        return await task

    assert asyncio.run(main()) == ("TimeoutError", 0)


@pytest.mark.parametrize("error", [None, RuntimeError("cleanup failed")], ids=["cancelled", "failing-cleanup"])
def test_cancelling_the_caller_while_a_failed_reads_others_end_cancels_it(error: BaseException | None) -> None:
    """Cancelling the caller while in_order awaits cancelled reads after a failure ends it cancelled, not erroring."""
    async def main() -> bool:
        cleaned = asyncio.Event()
        task = asyncio.create_task(in_order([_failing, _slow(cleaned, error)], _refuses))
        await let_tasks_run()
        task.cancel()
        await let_tasks_run()
        cleaned.set()
        await asyncio.wait([task])
        if not task.cancelled():
            task.exception()  # retrieved: the test's answer is that it was not cancelled
        return task.cancelled()

    assert asyncio.run(main())


def test_a_lone_read_cancelled_when_nobody_asked_fails_with_read_cancelled() -> None:
    """A lone read ending in a CancelledError nobody asked for raises ReadCancelled; the caller is not cancelled."""
    async def main() -> int:
        with pytest.raises(ReadCancelled, match=r"read 1 of 1 \(_stray\) was cancelled"):
            await in_order([_stray], _refuses)
        await asyncio.sleep(0)  # not cancelled
        task = asyncio.current_task()
        assert task is not None
        return task.cancelling()

    assert asyncio.run(main()) == 0


@pytest.mark.parametrize("how", ["deadline", "cancel"])
def test_a_lone_read_cancelled_by_the_caller_cancels_the_caller(how: str) -> None:
    """A lone read cancelled from outside ends the caller in TimeoutError or cancelled, never ReadCancelled."""
    async def main() -> str:
        cleaned, timeouts = asyncio.Event(), []
        task = asyncio.create_task(_deadline_caller([_slow(cleaned)], timeouts))
        await let_tasks_run()
        _expire(timeouts[0]) if how == "deadline" else task.cancel()
        await let_tasks_run()
        cleaned.set()
        await asyncio.wait([task])
        return "cancelled" if task.cancelled() else task.result()[0]

    assert asyncio.run(main()) == ("TimeoutError" if how == "deadline" else "cancelled")


@pytest.mark.parametrize("first", ["refusing", "failing"])
def test_a_read_deciding_in_its_first_step_starts_no_read_it_makes_unneeded(first: str) -> None:
    """With an eager task factory, a first read refusing or failing as created starts none of the later reads."""
    started: list[int] = []

    async def deciding() -> str | None:
        if first == "failing":
            raise ValueError("the read failed")
        return "refused"

    def later(i: int) -> Callable[[], Awaitable[str | None]]:
        async def read() -> str | None:
            started.append(i)
            await asyncio.sleep(0)
            return None
        return read

    async def main() -> list[str | None] | str:
        asyncio.get_running_loop().set_task_factory(eager_factory)  # type: ignore[arg-type]
        try:
            return await in_order([deciding, later(1), later(2)], _refuses)
        except ValueError as exc:
            return str(exc)

    assert asyncio.run(main()) == (["refused"] if first == "refusing" else "the read failed")
    assert started == []


def test_a_read_raising_generator_exit_ends_in_order_with_it_and_no_cancel_request_left() -> None:
    """A read raising GeneratorExit ends in_order with it as raised, others cancelled, no cancel request left."""
    async def exits() -> str | None:
        await asyncio.sleep(0)
        raise GeneratorExit("the read exited")

    async def main() -> tuple[str, int]:
        cleaned = asyncio.Event()
        cleaned.set()
        try:
            async with asyncio.timeout(15):
                await in_order([exits, _slow(cleaned)], _refuses)
        except GeneratorExit as exc:
            ended = str(exc)
        task = asyncio.current_task()
        assert task is not None
        return ended, task.cancelling()

    assert asyncio.run(main()) == ("the read exited", 0)
