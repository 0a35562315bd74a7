"""Errors from task groups, walked leaf by leaf: whether an error is, throughout, errors of some kind.

A task group raises an ExceptionGroup of its tasks' errors, nested when task groups nest. Callers that turn one kind
of error into an exit code or a rejoin (`responder run`'s exit 75, the CLI's exit 3, `serve_rejoining`) must not
do so when another error stands beside it: `only` answers for every leaf or for none (a `Drained` group's first
error aside, when asked: the errors that ended its drain decide); `related` walks causes and contexts too.
`cancel_requests` is what a caller compares before and after a task group (or a stop that may raise a stray
CancelledError), never with 0; `cancelled_with` keeps the error of a task cancelled with its waiter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any, Self, TypeVar

E = TypeVar("E", bound=BaseException)


def only(exc: BaseException, kind: type[E] | tuple[type[E], ...], *, causes: bool = False,
         deciding: bool = False) -> list[E] | None:
    """The errors of `kind`, one per leaf of `exc`'s nested exception groups (`exc` itself when it is no group),
    when every leaf is one; with `causes`, a leaf may also have been raised from one (its `__cause__` chain is
    followed, not `__context__`, nor a group met on it); with `deciding`, a `Drained` group's first error is left
    out (the errors after it decide). None when a leaf is not."""
    found: list[E] = []
    for leaf in leaves(exc, deciding=deciding):
        match = _in_chain(leaf, kind) if causes else leaf if isinstance(leaf, kind) else None
        if match is None:
            return None
        found.append(match)
    return found or None  # no leaf left to decide is no answer (a `Drained` group holds two errors at least)


class Drained(ExceptionGroup[Exception]):
    """A failure that let the work in hand finish (the first error: a dead letter not sent, or a chunk's group of
    them, responder/service/batches.py) and the errors that ended that drain (the others: a fence, a timeline
    failure, in another lane or the same chunk). What the service does next (a rejoin, an exit code)
    is theirs to decide: `only(..., deciding=True)` leaves the first out. It holds two errors at least (with one
    only, nothing would be left to decide)."""

    def __new__(cls, message: str, exceptions: Sequence[Exception]) -> Self:
        if len(exceptions) < 2:
            raise ValueError("a Drained group holds the drained error and at least one that ended its drain")
        return super().__new__(cls, message, exceptions)


def leaves(exc: BaseException, *, deciding: bool = False) -> Iterator[BaseException]:
    """The errors in `exc`'s nested exception groups, depth first (`exc` itself when it is no group); with
    `deciding`, not a `Drained` group's first error."""
    if isinstance(exc, BaseExceptionGroup):
        inner = exc.exceptions[1:] if deciding and isinstance(exc, Drained) else exc.exceptions
        for each in inner:
            yield from leaves(each, deciding=deciding)
    else:
        yield exc


def related(exc: BaseException) -> Iterator[BaseException]:
    """Every error `exc` holds: its leaves and, for each, the errors it was raised from (`__cause__`) or while
    handling (`__context__`), through any group met on the way, each once, `exc`'s leaves first."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        err = todo.pop(0)
        if id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, BaseExceptionGroup):
            todo[:0] = err.exceptions  # its errors next, in order
        else:
            yield err
        todo += [e for e in (err.__cause__, err.__context__) if e is not None]


def _in_chain(exc: BaseException, kind: type[E] | tuple[type[E], ...]) -> E | None:
    """The first error of `kind` in `exc`'s `__cause__` chain (`exc` first)."""
    return next((cause for cause in cause_chain(exc) if isinstance(cause, kind)), None)


def cause_chain(exc: BaseException) -> Iterator[BaseException]:
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
    assert current is not None  # nosec B101 - only a task awaits asyncio.wait, so there is one
    for _ in range(cancels):
        current.uncancel()
    return task.exception()
