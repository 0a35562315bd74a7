"""A task factory that runs a task's first step as it is created, as Python 3.12's `asyncio.eager_task_factory`
does, for checking code meant to hold on 3.11 (where tasks start lazily) and on later Pythons alike."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any


class _Started:
    """Awaits a coroutine already run to its first suspension (`yielded`), as the task would have gone on."""

    def __init__(self, coro: Coroutine[Any, Any, Any], yielded: Any) -> None:
        self.coro, self.yielded = coro, yielded

    def __await__(self) -> Generator[Any, Any, Any]:
        yielded = self.yielded
        while True:
            try:
                try:
                    sent = yield yielded
                except BaseException as exc:  # noqa: BLE001 - thrown into the task (a cancel): into the coroutine
                    yielded = self.coro.throw(exc)
                else:
                    yielded = self.coro.send(sent)
            except StopIteration as stop:
                return stop.value


async def _go_on(started: _Started) -> Any:
    return await started


async def _answer(value: Any) -> Any:
    return value


async def _raise(exc: BaseException) -> Any:
    raise exc


def eager_factory(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any) -> asyncio.Task[Any]:
    """A task factory running a task's first step in `create_task`, as 3.12's `asyncio.eager_task_factory` does (in
    the creating task: enough for reads that do not ask which task runs them)."""
    try:
        yielded = coro.send(None)
    except StopIteration as stop:
        return asyncio.Task(_answer(stop.value), loop=loop, **kwargs)
    except BaseException as exc:  # noqa: BLE001 - the task's end, given when it runs
        return asyncio.Task(_raise(exc), loop=loop, **kwargs)
    return asyncio.Task(_go_on(_Started(coro, yielded)), loop=loop, **kwargs)
