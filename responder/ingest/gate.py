"""The gate between the partition lanes and the work that must see no chunk half-handled.

The lanes of responder/ingest/flow.py handle their chunks under `Gate.shared()`, several partitions at once;
rebalances, evictions and approvals take the gate exclusively (`async with gate`), so they wait for the chunks in
hand and no new chunk starts meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class Gate:
    """A write-preferring readers/writer lock: `async with gate` is exclusive, `async with gate.shared()` lets
    lanes of different partitions handle their chunks at once. A waiting exclusive holder blocks new shared ones."""

    def __init__(self) -> None:
        self._cond = asyncio.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

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

    async def __aexit__(self, *exc: object) -> None:
        async with self._cond:
            self._writer = False
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
