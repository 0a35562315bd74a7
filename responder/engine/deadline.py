"""A step's timeout, armed only if the step suspends: `asyncio.timeout`'s semantics without its timer per step.

`asyncio.timeout` schedules a timer handle on entry and cancels it on exit (a timer, a context manager object and two
coroutines, about a tenth of a no-op step's own cost). A body that never suspends cannot be cancelled by it (the
timer's callback only runs once the body gives the loop control), so `within` runs the awaitable until its first
suspension itself and only then enters `asyncio.timeout_at` with the deadline computed at the start: a body
that suspends is cancelled at exactly the moment, and with exactly the TimeoutError, the plain timeout gives.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def deadline_in(timeout: float) -> float:
    """The loop time `timeout` seconds from now, as `asyncio.timeout(timeout)` computes its deadline."""
    return asyncio.get_running_loop().time() + timeout


class within(Generic[T]):  # noqa: N801 - used as a function: `await within(coro, deadline)`
    """`async with asyncio.timeout_at(deadline): return await coro`, the timer armed at the first suspension."""

    __slots__ = ("coro", "deadline")

    def __init__(self, coro: Coroutine[Any, Any, T], deadline: float) -> None:
        self.coro, self.deadline = coro, deadline

    def __await__(self) -> Generator[Any, Any, T]:
        coro = self.coro
        try:
            value = coro.send(None)
        except StopIteration as done:  # finished without suspending: no timer could have fired
            return done.value  # type: ignore[no-any-return]
        return (yield from _armed(coro, value, self.deadline).__await__())


async def _armed(coro: Coroutine[Any, Any, T], value: Any, deadline: float) -> T:
    async with asyncio.timeout_at(deadline):
        return await _Resumed(coro, value)


class _Resumed(Generic[T]):
    """The rest of a coroutine already started (it yielded `value`), driven as `await` would drive it."""

    __slots__ = ("coro", "value")

    def __init__(self, coro: Coroutine[Any, Any, T], value: Any) -> None:
        self.coro, self.value = coro, value

    def __await__(self) -> Generator[Any, Any, T]:
        coro, value = self.coro, self.value
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # noqa: BLE001 - thrown in (a cancellation, the timeout's): passed on
                try:
                    value = coro.throw(exc)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]
