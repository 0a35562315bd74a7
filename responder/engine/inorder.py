"""Reads run together that answer as reading them one after another does.

The guard's reads through AWS have an order that fixes their answer: a kind's keys in sorted order (`keptreads`), and
the kinds KMS aliases, then IAM principals, then resource tags (`guards`): the first read in that order that refuses
is the answer. `in_order` runs such reads concurrently (at most `at_once` at a time) and gives the answers reading
them in order would: each read's answer up to the first one that refuses, whichever read ended first. A read that
refuses cancels the reads after it (they cannot change the answer); the reads before it go on, since one of them may
still refuse first, so a later read refusing first is never the answer before the earlier ones have answered. One
read (or none) runs in the caller's task: no task, no TaskGroup.

Cancelling the caller (the guard's deadline) cancels every read in flight and waits for them (`TaskGroup`). An
exception a read lets through ends `in_order` with it (one: as it was raised), the other reads cancelled, and the
cancel request Python 3.11's TaskGroup then leaves in the caller's task is taken back (`take_back_cancels`). A read
that ends cancelled when nobody asked (neither the caller nor a refusal before it) is no answer: the TaskGroup lets
a child's CancelledError pass as if it had ended, so `in_order` raises ReadCancelled naming it (until 2026-12-06 a
KeyError at `found[i]`), never an answer without it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import TypeVar

from responder.errors import ReadCancelled
from responder.exception_groups import cancel_requests, take_back_cancels

T = TypeVar("T")


async def in_order(reads: Sequence[Callable[[], Awaitable[T]]], refuses: Callable[[T], bool],
                   at_once: int | None = None) -> list[T]:
    """The answers of `reads`, in their order, up to and including the first that `refuses` (all when none does), as
    reading them one after another gives; read concurrently, at most `at_once` (all, when None) at a time."""
    if len(reads) <= 1:
        return [await read() for read in reads]
    found: dict[int, T] = {}
    await _read_all(reads, refuses, asyncio.Semaphore(max(1, len(reads) if at_once is None else at_once)), found)
    out: list[T] = []
    for i in range(len(reads)):  # the reads after the first refusing one may be unread
        if i not in found:  # cancelled, and not by a refusal before it (those cancel only the reads after them)
            raise ReadCancelled(f"read {i + 1} of {len(reads)} ({_name(reads[i])}) was cancelled, though neither the "
                                "caller nor an earlier read's refusal cancelled it: it has no answer, so none is given")
        out.append(found[i])
        if refuses(found[i]):
            break
    return out


def _name(read: Callable[[], Awaitable[T]]) -> str:
    """What `read` calls (a partial's function), for a message."""
    while isinstance(read, partial):
        read = read.func
    return str(getattr(read, "__qualname__", type(read).__name__))


async def _read_all(reads: Sequence[Callable[[], Awaitable[T]]], refuses: Callable[[T], bool],
                    bound: asyncio.Semaphore, found: dict[int, T]) -> None:
    """Each of `reads` into `found` (by index), within `bound`; one that refuses cancels the reads after it.
    Cancelled, it cancels the reads in flight and waits for them (`TaskGroup`)."""
    tasks: list[asyncio.Task[None]] = []

    async def read(i: int) -> None:
        async with bound:
            found[i] = got = await reads[i]()
        if refuses(got):
            for later in tasks[i + 1:]:
                later.cancel()

    cancels = cancel_requests()
    try:
        async with asyncio.TaskGroup() as group:
            tasks.extend(group.create_task(read(i)) for i in range(len(reads)))
    except BaseExceptionGroup as errors:  # what a read let through: one (the others cancelled) as it was raised
        take_back_cancels(cancels)  # the request 3.11's TaskGroup leaves in this task on a child's failure
        if len(errors.exceptions) == 1:
            error = errors.exceptions[0]
            raise error from error.__cause__  # its own cause kept, the group's context dropped
        raise
