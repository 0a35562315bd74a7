"""Reads run together that answer as reading them one after another does.

The guard's reads through AWS have an order that fixes their answer: a kind's keys in sorted order (`keptreads`), and
the kinds KMS aliases, then IAM principals, then resource tags (`guards`): the first read in that order that refuses
is the answer. `in_order` runs such reads concurrently (at most `at_once` at a time) and gives the answers reading
them in order would: each read's answer up to the first one that refuses, whichever read ended first. A read that
refuses cancels the reads after it (they cannot change the answer); the reads before it go on, since one of them may
still refuse first, so a later read refusing first is never the answer before the earlier ones have answered. One
read (or none) runs in the caller's task: no task, no TaskGroup.

Cancelling the caller (the guard's deadline, a shutdown) cancels every read in flight and waits for them
(`TaskGroup`), then ends the caller cancelled, whatever the reads did meanwhile (one failing, or failing as it was
cancelled): the caller's `asyncio.timeout` raises TimeoutError (until 2026-12-06 a read's error then ended it and
the cancel was lost). An exception a read lets through ends `in_order` with it (several: a group), the other reads
cancelled, even where reading in order would have stopped at an earlier read's refusal (the step acts on
neither); each read's task catches its own exception, so the TaskGroup never cancels the caller's task to wake it
(Python 3.11's leaves that request behind) and no cancel request is taken back. A read that ends cancelled when
nobody asked (neither the caller nor a refusal or failure before it) is no answer: `in_order` raises ReadCancelled
naming it (until 2026-12-06 a KeyError at `found[i]`), never an answer without it, a lone read as one among several
(until 2026-12-06 a lone read's CancelledError cancelled the caller). A read whose task's first step already refuses
or fails (an eager task factory, 3.12's `asyncio.eager_task_factory`) starts none of the reads it makes unneeded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import TypeVar

from responder.errors import ReadCancelled
from responder.exception_groups import cancel_requests

T = TypeVar("T")

# Not caught in a read's task: a cancel is the read's end (the TaskGroup's to handle), and the interpreter's own
# exits leave the loop from the task that raised them (asyncio re-raises them out of `run`). Not GeneratorExit: asyncio
# keeps it as the task's exception, so the TaskGroup would cancel the caller's task to wake it and, on 3.11, leave that
# request behind; caught, it is raised by in_order as any other.
_PASSED = (asyncio.CancelledError, KeyboardInterrupt, SystemExit)


async def in_order(reads: Sequence[Callable[[], Awaitable[T]]], refuses: Callable[[T], bool],
                   at_once: int | None = None) -> list[T]:
    """The answers of `reads`, in their order, up to and including the first that `refuses` (all when none does), as
    reading them one after another gives; read concurrently, at most `at_once` (all, when None) at a time."""
    if not reads:
        return []
    if len(reads) == 1:
        return [await _alone(reads[0])]
    found: dict[int, T] = {}
    failed = await _read_all(reads, refuses, asyncio.Semaphore(max(1, len(reads) if at_once is None else at_once)),
                             found)
    if failed:  # raised as it was raised: its own cause and context kept
        raise failed[0] if len(failed) == 1 else BaseExceptionGroup("reads run in order failed", failed)
    out: list[T] = []
    for i in range(len(reads)):  # the reads after the first refusing one may be unread
        if i not in found:  # cancelled, and not by a refusal before it (those cancel only the reads after them)
            raise ReadCancelled(_unasked(i, reads))
        out.append(found[i])
        if refuses(found[i]):
            break
    return out


async def _alone(read: Callable[[], Awaitable[T]]) -> T:
    """`read`, in the caller's task. A CancelledError no cancel request of the caller's since entry explains (a stray
    one a read lets through) raises ReadCancelled, as a read among several does; the caller's own goes on."""
    cancels = cancel_requests()
    try:
        return await read()
    except asyncio.CancelledError:
        if cancel_requests() > cancels:  # the caller cancelled: its deadline, a shutdown
            raise
        raise ReadCancelled(_unasked(0, [read])) from None


def _unasked(i: int, reads: Sequence[Callable[[], Awaitable[T]]]) -> str:
    return (f"read {i + 1} of {len(reads)} ({_name(reads[i])}) was cancelled, though neither the caller nor an "
            "earlier read's refusal cancelled it: it has no answer, so none is given")


def _name(read: Callable[[], Awaitable[T]]) -> str:
    """What `read` calls (a partial's function), for a message."""
    while isinstance(read, partial):
        read = read.func
    return str(getattr(read, "__qualname__", type(read).__name__))


async def _read_all(reads: Sequence[Callable[[], Awaitable[T]]], refuses: Callable[[T], bool],
                    bound: asyncio.Semaphore, found: dict[int, T]) -> list[BaseException]:
    """Each of `reads` into `found` (by index), within `bound`; one that refuses cancels the reads after it, one that
    fails (the exceptions returned, in the order raised) every other. Cancelled, it cancels the reads in flight and
    waits for them (`TaskGroup`), then raises CancelledError."""
    tasks: list[asyncio.Task[None]] = []
    failed: list[BaseException] = []
    needed = len(reads)  # the reads from this index on cannot change the answer

    def unneeded(i: int, after: int) -> None:
        """Read `i` made the reads from `after` on unneeded: cancel those started, start none."""
        nonlocal needed
        needed = min(needed, after)
        for j, task in enumerate(tasks):
            if j >= after and j != i:
                task.cancel()

    async def read(i: int) -> None:
        try:
            async with bound:
                found[i] = got = await reads[i]()
            if refuses(got):
                unneeded(i, i + 1)
        except _PASSED:
            raise
        except BaseException as exc:  # noqa: BLE001 - raised by in_order once the others ended (not the TaskGroup's)
            failed.append(exc)
            unneeded(i, 0)

    async with asyncio.TaskGroup() as group:
        for i in range(len(reads)):
            if i >= needed:  # decided in a task's first step (an eager task factory runs it in create_task)
                break
            tasks.append(group.create_task(read(i)))
    return failed
