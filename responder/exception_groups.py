"""Errors from task groups, walked leaf by leaf: whether an error is, throughout, errors of some kind.

A task group raises an ExceptionGroup of its tasks' errors, nested when task groups nest. Callers that turn one kind
of error into an exit code or a rejoin (`responder run`'s exit 75, the CLI's exit 3, `serve_rejoining`) must not
do so when another error stands beside it: `only` answers for every leaf or for none. `cancel_requests` is what a
caller compares before and after a task group (or a stop that may raise a stray CancelledError), never with 0;
`cancelled_with` keeps the error of a task cancelled with its waiter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any, TypeVar

E = TypeVar("E", bound=BaseException)


def only(exc: BaseException, kind: type[E] | tuple[type[E], ...], *, causes: bool = False) -> list[E] | None:
    """The errors of `kind`, one per leaf of `exc`'s nested exception groups (`exc` itself when it is no group),
    when every leaf is one; with `causes`, a leaf may also have been raised from one (its `__cause__` chain is
    followed, not `__context__`, nor a group met on it). None when a leaf is not."""
    found: list[E] = []
    for leaf in leaves(exc):
        match = _in_chain(leaf, kind) if causes else leaf if isinstance(leaf, kind) else None
        if match is None:
            return None
        found.append(match)
    return found


def leaves(exc: BaseException) -> Iterator[BaseException]:
    """The errors in `exc`'s nested exception groups, depth first (`exc` itself when it is no group)."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from leaves(inner)
    else:
        yield exc


def _in_chain(exc: BaseException, kind: type[E] | tuple[type[E], ...]) -> E | None:
    """The first error of `kind` in `exc`'s `__cause__` chain (`exc` first)."""
    return next((cause for cause in causes(exc) if isinstance(cause, kind)), None)


def causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then each error its `__cause__` chain holds (once each; not `__context__`, nor a group's errors)."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        yield cause
        seen.add(id(cause))
        cause = cause.__cause__


def cancel_requests() -> int:
    """The running task's cancel requests not taken back (`Task.cancelling`), 0 outside a task. Compare it with its
    value on entry, not with 0: Python 3.11's TaskGroup leaves its own request in its parent when a child fails
    while it waits for the others (it cancels the parent to wake it and never takes that back)."""
    task = asyncio.current_task()
    return task.cancelling() if task is not None else 0


async def cancelled_with(task: asyncio.Future[Any]) -> BaseException | None:
    """The running task was cancelled while it waited for `task` (not awaiting it: `asyncio.wait`): `task` is
    cancelled too and awaited, any cancel meanwhile passed on to it. Returns `task`'s own error when it ended with one
    (as responder/service/batches.py raises the dead letters it could not send when cancelled), after taking back the
    cancels it stands for (`uncancel`, as Python 3.11 counts them), for the caller to raise; None when it ended
    cancelled or well, for the caller's cancel to go on. Never left running, nor its error unretrieved."""
    cancels = 1
    task.cancel()
    while not task.done():
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            cancels += 1
            task.cancel()
    if task.cancelled() or task.exception() is None:
        return None
    current = asyncio.current_task()
    for _ in range(cancels if current is not None else 0):
        current.uncancel()  # type: ignore[union-attr]
    return task.exception()
