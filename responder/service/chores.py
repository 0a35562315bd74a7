"""The alert loop's chores between polls (evicting closed incidents, the idle flush), run beside it as tasks.

aiokafka drops a member that does not poll within `max_poll_interval_ms`. An eviction waits for the batch gate's
exclusive side (behind a decision whose guard reads are slow, the chunks in hand) and then writes the changelog; the
idle flush waits for the changelog barrier: awaited by the poll loop, a few of those could pass the poll interval.
`Chores` runs each in its own task instead, one of each name at a time (one still running when its next turn comes is
not started again), and the poll loop polls on meanwhile. A chore's failure is raised by the loop's next `check`, so
it stops the service as it did when the loop awaited it (docs/fleet.md, "Deadlines"). The approvals loop runs its
rounds of requests to publish again the same way (responder/service/signed.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)


class Chores:
    """Named background tasks of the poll loop, at most one per name; their failures raised by `check`."""

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def running(self, name: str) -> bool:
        """Whether the chore `name` is still running."""
        task = self._tasks.get(name)
        return task is not None and not task.done()

    def start(self, name: str, chore: Callable[[], Awaitable[None]]) -> None:
        """Run `chore()` in a task unless the one of that name still runs (it is skipped: the next turn takes it)."""
        self.check()
        if self.running(name):
            log.debug("chore_skipped", chore=name)
            return

        async def run() -> None:
            await chore()

        self._tasks[name] = asyncio.create_task(run(), name=f"responder-chore-{name}")

    def check(self) -> None:
        """Raise the failure of a chore that ended with one (the first found); forget the ended ones."""
        for name, task in list(self._tasks.items()):
            if task.done():
                del self._tasks[name]
                if not task.cancelled() and (exc := task.exception()) is not None:
                    raise exc

    async def close(self, *, cancel: bool = False) -> None:
        """Wait for the chores still running, then raise a failure among them; with `cancel` (the loop failed: its
        error is the one raised) cancel them first, and log a failure one of them had ended with (`chore_failed`)."""
        tasks = list(self._tasks.values())
        if cancel:
            for task in tasks:
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if not cancel:
            self.check()
        for name, task in self._tasks.items():
            if not task.cancelled() and (exc := task.exception()) is not None:
                log.error("chore_failed", chore=name, error=f"{type(exc).__name__}: {exc}")
        self._tasks.clear()
