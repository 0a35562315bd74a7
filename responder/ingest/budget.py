"""The handling budget a flow's partition lanes share (responder/ingest/flow.py).

Chunks start while the records being handled number at most `max_batch`, as one poll batch did before lanes; a
chunk larger than that starts alone. A chunk still running after `slow_after` seconds (its actuators are slow) stops
counting against the budget, so the other partitions keep flowing while it waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from responder.exception_groups import cancelled_with
from responder.models.event import RawRecord

log = structlog.get_logger(__name__)

Handler = Callable[[dict[Any, list[RawRecord]]], Awaitable[None]]
"""Handles one partition's chunk and commits it (the service's batch handler)."""


class HandlingBudget:
    """At most `max_batch()` records (the flow's, read as each chunk waits) handled at once across the lanes, slow
    chunks not counted; no chunk started once `stopped()` (a lane failed, or a handler announced its failure)."""

    def __init__(self, max_batch: Callable[[], int], slow_after: float, stopped: Callable[[], bool]) -> None:
        self.max_batch, self.slow_after, self._stopped = max_batch, slow_after, stopped
        self._handling = 0  # records in chunks that are not slow (at most max_batch, or one chunk)
        self._room = asyncio.Condition()

    async def handle(self, handle: Handler, tp: Any, chunk: list[RawRecord]) -> bool:
        """Handle a chunk within the budget (a slow chunk gives its share back); False, not started, when stopped
        while it waited for its share (a chunk in hand gives it back as it ends or turns slow)."""
        n = len(chunk)
        async with self._room:
            await self._room.wait_for(lambda: self._stopped() or self._handling == 0
                                      or self._handling + n <= self.max_batch())
            if self._stopped():
                return False
            self._handling += n
        counted = True
        try:
            task = asyncio.ensure_future(handle({tp: chunk}))
            try:
                done, _ = await asyncio.wait({task}, timeout=self.slow_after)
                if not done:
                    log.info("partition_slow", partition=str(tp), records=n)
                    await self._release(n)
                    counted = False
                    await asyncio.wait({task})
            except asyncio.CancelledError:  # from outside: the handler is cancelled too, and its own error kept
                if await cancelled_with(task) is None:
                    raise
            task.result()  # the handler's error, if any
        finally:
            if counted:
                await asyncio.shield(self._release(n))
        return True

    async def _release(self, n: int) -> None:
        async with self._room:
            self._handling -= n
            self._room.notify_all()
