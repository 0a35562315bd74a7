"""Forms of a step's target read through AWS, kept for a while only to refuse (the KMS aliases of a key, the unique id
and path of an IAM role or user).

What an event carries about a target cannot be trusted to protect it: an attacker shapes the alert. When a protected
id needs what only AWS knows of a target (`kmsaliases`, `iamprincipals`), the guard reads it in responder's own
account. A target's forms are kept `TTL_S` seconds and used kept only to refuse (`kept`): forms that refuse a step
refuse the next one on that target without a read (fail closed: a change meanwhile still refuses), while forms that
refuse nothing are read again (`forms`), so a change since protects the target at once. A read that fails (no
permission, not found) is not kept, and the step is refused (fail closed): the guard cannot tell that the target is
not a protected one. A transient error (throttling, 5xx, a connection error or timeout) is retried first with the
actuators' retry policy (`with_retries`: jittered backoff, `ATTEMPTS` tries within `DEADLINE_S` seconds), so an alert
storm that meets a rate limit does not refuse containment broadly; one still failing then refuses.

The keys of one step are read concurrently, at most `CONCURRENCY` at once (and never more than the threads of an AWS
service's pool, `threadpools.AWS_THREADS_PER_SERVICE`, where `AwsSession.call` runs boto3), so a step naming 50 roles
waits for a few rounds of reads, not 50 in a row, before containment starts. The answer is the one reading them in
`sorted` order would give: the union of the forms, or the refusal of the first key in that order that cannot be read,
whichever read ended first; the reads of keys after a failing one are cancelled (they cannot change the answer).
Cancelling the caller (the guard's deadline) cancels the reads in flight (a read still queued for a thread never
runs; one already in its thread holds it until boto3's call lands), and an exception `_of` does not catch ends `forms`
with it (the other reads cancelled).
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable

from responder.actuators.base import AwsCaller
from responder.actuators.retry import retry_after
from responder.errors import TransientActuationError
from responder.exception_groups import cancel_requests, take_back_cancels
from responder.threadpools import AWS_THREADS_PER_SERVICE

_MAX_KEPT = 1024  # targets kept at most: findings naming many targets cannot grow the cache without bound


class KeptReads(ABC):
    """Reads and keeps, for `TTL_S` seconds, the forms of the targets steps name (`clock`: monotonic seconds)."""

    TTL_S = 30.0
    ATTEMPTS = 4  # tries of one read when it fails transiently (3 retries)
    DEADLINE_S = 3.0  # no retry starts later than this after the first try
    BACKOFF_S = 0.2  # the first retry's wait (jittered), doubling after
    CONCURRENCY = 8  # reads of one step in flight at most (below botocore's 10 pooled connections per client)

    def __init__(self, aws: AwsCaller, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.aws = aws
        self.clock = clock
        self._kept: dict[str, tuple[float, frozenset[str]]] = {}

    def kept(self, keys: Iterable[str]) -> set[str]:
        """The forms (lower-cased) of `keys` read less than `TTL_S` seconds ago, with no read: only to refuse a step
        (what changed since is not among them)."""
        now = self.clock()
        return {f for key in keys if (kept := self._kept.get(key)) is not None and now - kept[0] < self.TTL_S
                for f in kept[1]}

    async def forms(self, keys: Iterable[str]) -> set[str] | str:
        """Every form (lower-cased) of `keys`, read now, or why the first key (in sorted order) whose forms could not
        be read was refused; read concurrently, at most `CONCURRENCY` (and `AWS_THREADS_PER_SERVICE`) at once."""
        ordered = sorted(keys)
        found: dict[str, frozenset[str] | str] = {}
        if len(ordered) == 1:
            found[ordered[0]] = await self._of(ordered[0])
        elif ordered:
            await self._read_all(ordered, found)
        out: set[str] = set()
        for key in ordered:  # as reads one after another answer: keys after the first failing one may be unread
            got = found[key]
            if isinstance(got, str):
                return got
            out |= got
        return out

    async def _read_all(self, ordered: list[str], found: dict[str, frozenset[str] | str]) -> None:
        """`_of` of each of `ordered` into `found`, at most `CONCURRENCY` at once; a failing key cancels the reads of
        the keys after it. Cancelled, it cancels the reads in flight and waits for them (`TaskGroup`)."""
        bound = asyncio.Semaphore(max(1, min(self.CONCURRENCY, AWS_THREADS_PER_SERVICE)))
        tasks: list[asyncio.Task[None]] = []

        async def read(i: int) -> None:
            async with bound:
                found[ordered[i]] = got = await self._of(ordered[i])
            if isinstance(got, str):
                for later in tasks[i + 1:]:
                    later.cancel()

        cancels = cancel_requests()
        try:
            async with asyncio.TaskGroup() as group:
                tasks.extend(group.create_task(read(i)) for i in range(len(ordered)))
        except BaseExceptionGroup as errors:  # what `_of` let through: one (the others cancelled) as it was raised
            take_back_cancels(cancels)  # the request 3.11's TaskGroup leaves in this task on a child's failure
            if len(errors.exceptions) == 1:
                raise errors.exceptions[0] from None
            raise

    async def _of(self, key: str) -> frozenset[str] | str:
        now = self.clock()
        try:
            found = await self._retried(key)
        except Exception as exc:  # noqa: BLE001 - whatever the read ended with, the step is refused (fail closed)
            return self._unreadable(key, exc)
        if len(self._kept) >= _MAX_KEPT:
            self._kept = {k: v for k, v in self._kept.items() if now - v[0] < self.TTL_S}
            if len(self._kept) >= _MAX_KEPT:
                self._kept.clear()
        self._kept[key] = (now, found)
        return found

    async def _retried(self, key: str) -> frozenset[str]:
        """`_read`, retried with the actuators' policy when it fails transiently, unless the first try alone took
        `DEADLINE_S` (a call that hung to its timeout): no retry starts later, as the step's lane waits on the guard."""
        started = time.monotonic()
        try:
            return await self._read(key)
        except TransientActuationError as exc:
            if time.monotonic() - started >= self.DEADLINE_S:
                raise
            return await retry_after(exc, lambda: self._read(key), attempts=self.ATTEMPTS, deadline=self.DEADLINE_S,
                                     started=started, initial=self.BACKOFF_S, maximum=self.DEADLINE_S / 2)

    @abstractmethod
    async def _read(self, key: str) -> frozenset[str]:
        """The forms (lower-cased) of `key`, read through `aws`; raises when they cannot be read."""

    @abstractmethod
    def _unreadable(self, key: str, exc: Exception) -> str:
        """Log that `key`'s forms could not be read, and say why the step is refused."""
