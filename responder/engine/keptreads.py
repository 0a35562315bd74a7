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
with it (the other reads cancelled). The guard's kinds of reads run together the same way (`inorder`).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import TypeVar

from responder.actuators.base import AwsCaller
from responder.actuators.retry import retry_after
from responder.engine.inorder import in_order
from responder.errors import TransientActuationError
from responder.threadpools import AWS_THREADS_PER_SERVICE

T = TypeVar("T")
_MAX_KEPT = 1024  # targets kept at most: findings naming many targets cannot grow the cache without bound


def _refused(got: frozenset[str] | str) -> bool:
    return isinstance(got, str)


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
        be read was refused; read concurrently, at most `CONCURRENCY` (and `AWS_THREADS_PER_SERVICE`) at once, the
        reads of the keys after a failing one cancelled (`in_order`)."""
        ordered = sorted(keys)
        found = await in_order([partial(self._of, key) for key in ordered], _refused,
                               min(self.CONCURRENCY, AWS_THREADS_PER_SERVICE))
        out: set[str] = set()
        for got in found:  # as reads one after another answer: up to the first failing key
            if isinstance(got, str):
                return got
            out |= got
        return out

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
        """`_read`, retried (`retrying`)."""
        return await self.retrying(partial(self._read, key))

    async def retrying(self, read: Callable[[], Awaitable[T]]) -> T:
        """`read`, retried with the actuators' policy when it fails transiently, unless the first try alone took
        `DEADLINE_S` (a call that hung to its timeout): no retry starts later, as the step's lane waits on the guard."""
        started = time.monotonic()
        try:
            return await read()
        except TransientActuationError as exc:
            if time.monotonic() - started >= self.DEADLINE_S:
                raise
            return await retry_after(exc, read, attempts=self.ATTEMPTS, deadline=self.DEADLINE_S, started=started,
                                     initial=self.BACKOFF_S, maximum=self.DEADLINE_S / 2)

    @abstractmethod
    async def _read(self, key: str) -> frozenset[str]:
        """The forms (lower-cased) of `key`, read through `aws`; raises when they cannot be read."""

    @abstractmethod
    def _unreadable(self, key: str, exc: Exception) -> str:
        """Log that `key`'s forms could not be read, and say why the step is refused."""
