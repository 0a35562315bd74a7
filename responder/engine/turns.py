"""An incident's turn: one run at a time per incident (a resumed approval waits for a new event's run, and the other
way round), in arrival order, at no cost when uncontended."""

from __future__ import annotations

import asyncio


class Turns:
    """One at a time in an incident group (or an incident): how many runs hold or wait for it, dropped at none.

    The first run goes at once and makes no lock. A lock is made only when a second run arrives while the first
    holds the turn: it takes the lock for the holder (free, so no wait), then waits on it, and so does every later
    run while the lock exists; each run releases the lock at its end if one exists by then. So runs wait in arrival
    order on one `asyncio.Lock`, as before, and an uncontended run costs no lock, acquire or release.
    """

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock: asyncio.Lock | None = None
        self.users = 0

    async def wait(self) -> None:
        """Wait for the turn (only called while another run holds or waits for it)."""
        lock = self.lock
        if lock is None:
            lock = self.lock = asyncio.Lock()
            await lock.acquire()  # for the run holding the turn: a new lock is free, no wait
        await lock.acquire()
