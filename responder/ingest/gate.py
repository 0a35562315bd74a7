"""The gate between the partition lanes and the work that must see no chunk half-handled.

The lanes of responder/ingest/flow.py handle their chunks under `Gate.shared()`, several partitions at once;
rebalances, evictions and approvals take the gate exclusively (`async with gate`), so they wait for the chunks in
hand and no new chunk starts meanwhile. An exclusive holder that only waits from some point on (a released step whose
read-back settles) lets the lanes in with `downgrade()`, holding the shared side itself until it leaves.

Every change of the gate's state is made with no await between its check and itself, and the releases never await: a
cancel (a stop, a revocation's cut, a timeout) cannot lose one, nor leave a count of a waiter that went.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any


class Gate:
    """A write-preferring readers/writer lock: `async with gate` is exclusive, `async with gate.shared()` lets
    lanes of different partitions handle their chunks at once. A waiting exclusive holder blocks new shared ones."""

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] = []  # one per task waiting for its turn, woken by `_wake`
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0
        self._downgraded = False  # the exclusive holder holds the shared side instead (`downgrade`)
        self.holder: asyncio.Task[Any] | None = None  # the task in `async with gate`, downgraded or not

    async def __aenter__(self) -> None:
        self._writers_waiting += 1
        try:
            await self._until(self._free)
        except BaseException:  # cancelled while waiting: lanes that waited behind this writer may go in now
            self._writers_waiting -= 1
            self._wake()
            raise
        self._writers_waiting -= 1
        self._writer = True
        self.holder = asyncio.current_task()

    async def __aexit__(self, *exc: object) -> None:
        self.holder = None
        if self._downgraded:  # it held the shared side since `downgrade`; no writer came in meanwhile
            self._downgraded = False
            self._readers -= 1
        else:
            self._writer = False
        self._wake()

    async def downgrade(self) -> None:
        """For the exclusive holder only: let the lanes in from now on, holding the shared side itself until its
        `async with gate` ends (so a rebalance or an eviction still waits for it). Never taken back: a lane let in may
        wait on what the holder holds (an incident's turn). Again, or without the exclusive side: nothing."""
        if self._downgraded or not self._writer:
            return
        self._writer, self._downgraded = False, True
        self._readers += 1
        self._wake()

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        """Held by any number of lanes at once, never together with the exclusive holder."""
        await self._until(self._open)
        self._readers += 1
        try:
            yield
        finally:
            self._readers -= 1
            self._wake()

    def _free(self) -> bool:
        """Whether an exclusive holder may go in: no other one, no lane."""
        return not self._writer and self._readers == 0

    def _open(self) -> bool:
        """Whether a lane may go in: no exclusive holder, none waiting."""
        return not self._writer and self._writers_waiting == 0

    async def _until(self, ready: Callable[[], bool]) -> None:
        """Wait until `ready()`, checked again each time the gate changes; it holds when this returns, the caller
        taking its side before any await."""
        while not ready():
            turn = asyncio.get_running_loop().create_future()
            self._waiters.append(turn)
            try:
                await turn
            finally:
                self._waiters.remove(turn)

    def _wake(self) -> None:
        """Every waiter checks again whether its turn came (no await: a release needs no lock)."""
        for turn in self._waiters:
            if not turn.done():
                turn.set_result(None)
