"""The gate between the partition lanes and the work that must see no chunk half-handled.

The lanes of responder/ingest/flow.py handle their chunks under `Gate.shared()`, several partitions at once;
rebalances, evictions and approvals take the gate exclusively (`async with gate`), so they wait for the chunks in
hand and no new chunk starts meanwhile. An exclusive holder that only waits from some point on (a released step whose
read-back settles) lets the lanes in with `downgrade()`, holding the shared side itself until it leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any


class Gate:
    """A write-preferring readers/writer lock: `async with gate` is exclusive, `async with gate.shared()` lets
    lanes of different partitions handle their chunks at once. A waiting exclusive holder blocks new shared ones."""

    def __init__(self) -> None:
        self._cond = asyncio.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0
        self._downgraded = False  # the exclusive holder holds the shared side instead (`downgrade`)
        self.holder: asyncio.Task[Any] | None = None  # the task in `async with gate`, downgraded or not

    async def __aenter__(self) -> None:
        async with self._cond:
            self._writers_waiting += 1
            try:
                await self._cond.wait_for(lambda: not self._writer and self._readers == 0)
            except BaseException:  # cancelled while waiting: lanes that waited behind this writer may go in now
                self._writers_waiting -= 1
                self._cond.notify_all()
                raise
            self._writers_waiting -= 1
            self._writer = True
            self.holder = asyncio.current_task()

    async def __aexit__(self, *exc: object) -> None:
        async with self._cond:
            self.holder = None
            if self._downgraded:  # it held the shared side since `downgrade`; no writer came in meanwhile
                self._downgraded = False
                self._readers -= 1
            else:
                self._writer = False
            self._cond.notify_all()

    async def downgrade(self) -> None:
        """For the exclusive holder only: let the lanes in from now on, holding the shared side itself until its
        `async with gate` ends (so a rebalance or an eviction still waits for it). Never taken back: a lane let in may
        wait on what the holder holds (an incident's turn). Again, or without the exclusive side: nothing."""
        async with self._cond:
            if self._downgraded or not self._writer:
                return
            self._writer, self._downgraded = False, True
            self._readers += 1
            self._cond.notify_all()

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        """Held by any number of lanes at once, never together with the exclusive holder."""
        async with self._cond:
            await self._cond.wait_for(lambda: not self._writer and self._writers_waiting == 0)
            self._readers += 1
        try:
            yield
        finally:
            async with self._cond:
                self._readers -= 1
                self._cond.notify_all()
