"""The IAM record of a role or user (`iam:GetRole`/`iam:GetUser`'s `Role`/`User`), read once for the guard readers of
one step's check that ask for it at the same time.

Two of the guard's readers read the same record: `iamprincipals` (the unique id and path of a role or user a step names)
and `tagreads` (its tags). A step naming a role while both a protected id that may name a unique id and a protected tag
are set needs both, read together (`guards`): two `GetRole` calls for one role at once, against IAM's low rate limits,
on the containment path. Given one `IamRecords` (the engine gives both readers its own), they make one: within one check
(`one_check`, the guard's reads of one step), a reader asking for a record being read joins that read and gets its
record or its failure (the same exception: each reader refuses in its own words, `keptreads`). A read another check
started is never joined: its record may predate this check, and its retries would leave this check's reader less time
than its own (a storm of steps on one role keeps each step's retry budget); outside a check (a reader's `forms` called
on its own, or a step's check needing only one of the two kinds: its keys name distinct records) nothing is shared, and
the read runs in the reader's task. Within a check the read runs in a task of its own, retried with the policy of the
reader that started it (`KeptReads.retrying`, the same for both), so a waiter cancelled (a reader whose key is cancelled
after an earlier key refused, `inorder`) leaves the read to the others; the last waiter cancelled cancels it and waits
for it to end, as a reader's own read was. Nothing is kept once the read ends: each reader keeps its own forms for
`KeptReads.TTL_S`, only to refuse, and reads again otherwise (a change since an earlier check protects at once, as
before). Reads in flight are bounded by the readers' own bounds (`KeptReads.CONCURRENCY` each): each has a waiter
holding one of its reader's places.
"""

from __future__ import annotations

import asyncio
import time
from abc import abstractmethod
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeAlias

from responder.actuators.base import AwsCaller
from responder.engine.keptreads import KeptReads

Record: TypeAlias = dict[str, Any]
Retrying: TypeAlias = Callable[[Callable[[], Awaitable[Record]]], Awaitable[Record]]
_Key: TypeAlias = tuple[object | None, str]  # (the check, `role/NAME` or `user/NAME`)
_CHECK: ContextVar[object | None] = ContextVar("responder_guard_check", default=None)


@contextmanager
def one_check() -> Iterator[None]:
    """Within it (and the tasks started within it), reads shared only with the readers of this check."""
    token = _CHECK.set(object())
    try:
        yield
    finally:
        _CHECK.reset(token)


async def get_record(aws: AwsCaller, key: str) -> Record:
    """The record of `key` (`role/NAME`, `user/NAME`): one `iam:GetRole`/`iam:GetUser` call."""
    kind, name = key.split("/", 1)
    field = kind.capitalize()
    record: Record = (await aws.call("iam", f"get_{kind}", **{f"{field}Name": name}))[field]
    return record


@dataclass
class _Flight:
    task: asyncio.Task[Record]
    waiters: int = 0


class IamRecords:
    """One read in flight per role or user (`role/NAME`, `user/NAME`) and check, shared by its readers asking
    meanwhile."""

    def __init__(self, aws: AwsCaller) -> None:
        self.aws = aws
        self._flights: dict[_Key, _Flight] = {}

    async def record(self, key: str, retrying: Retrying) -> Record:
        """`key`'s record, read now: the read in flight for it in this check, else one started here (retried by
        `retrying`); outside a check (`one_check`), always one of its own."""
        check = _CHECK.get()
        if check is None:  # outside a check nothing is shared: a caller's read is never another's (a later check's)
            return await retrying(partial(get_record, self.aws, key))
        at = (check, key)
        flight = self._flights.get(at)
        if flight is None:
            flight = self._flights[at] = _Flight(asyncio.create_task(self._read(at, retrying)))
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.task)
        finally:
            flight.waiters -= 1
            if not flight.waiters and not flight.task.done():  # the last waiter cancelled: no one needs the read
                self._ended(at, flight.task)
                flight.task.cancel()
                await asyncio.wait([flight.task])
                if not flight.task.cancelled():
                    flight.task.exception()  # an end it could not be cancelled before: retrieved (never logged)

    async def _read(self, key: _Key, retrying: Retrying) -> Record:
        try:
            return await retrying(partial(get_record, self.aws, key[1]))
        finally:
            self._ended(key, asyncio.current_task())

    def _ended(self, key: _Key, task: asyncio.Task[Any] | None) -> None:
        """A reader asking for `key` from now on starts a read of its own (`task`'s ended, or is being cancelled)."""
        if (flight := self._flights.get(key)) is not None and flight.task is task:
            del self._flights[key]


class RecordReads(KeptReads):
    """A `KeptReads` whose forms of some keys come from an IAM record, read through `records` (shared with the other
    readers of it) when given, else on its own (`_read`)."""

    def __init__(self, aws: AwsCaller, *, clock: Callable[[], float] = time.monotonic,
                 records: IamRecords | None = None) -> None:
        super().__init__(aws, clock=clock)
        self.records = records

    async def _retried(self, key: str) -> frozenset[str]:
        record_key = self._record_key(key)
        if self.records is None or record_key is None:
            return await super()._retried(key)
        return self._from_record(key, await self.records.record(record_key, self.retrying))

    @abstractmethod
    def _record_key(self, key: str) -> str | None:
        """The IAM record (`role/NAME`, `user/NAME`) `key`'s forms come from, or None (read otherwise)."""

    @abstractmethod
    def _from_record(self, key: str, record: Record) -> frozenset[str]:
        """`key`'s forms (lower-cased) in its IAM `record`; raises when they are not there."""
