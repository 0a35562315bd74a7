"""When the tabletop runner may move time: once the service has *settled*.

Between two scheduled moments the runner waits until every delivered record has been handled (acted on,
flushed and committed by its partition lane: the poll loop hands records to the lanes and polls again at once,
so a record polled is not yet handled) and the consumer loops have come round again (so parked steps have been
checked against the new time). Nothing sleeps on wall time to advance the scenario; a service that has not
handled what it was sent within SETTLE_TIMEOUT wall seconds of its last progress fails the scenario instead of
letting time move. A kill point reached while waiting is handed to the runner, which restarts the service.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from responder.tabletop.host import ChildProcess, InProcess, Status

SETTLE_TIMEOUT = 30.0
"""Wall seconds a settle may wait without progress (a record handled, a restart) before the scenario fails."""


@dataclass
class Tally:
    """What the scenario sent, against which the service's handled count is compared."""

    delivered: int = 0  # alert records produced
    base: int = 0  # records handled by services that are gone
    decided: bool = False  # a decision was sent since the last settle


async def settle(host: InProcess | ChildProcess, tally: Tally, restart: Callable[[Status], Awaitable[None]],
                 offset: float) -> Status:
    """Wait (on the consumers, not on time) until everything delivered so far has been handled.

    `restart` is called with the status that reached a kill point; `offset` is the virtual time, for the error.
    """
    reached_at: int | None = None
    first = await host.status()
    approvals_from = first.approval_polls
    rounds, tally.decided = (2 if tally.decided or first.due else 0), False
    progress, deadline = first.handled, time.monotonic() + SETTLE_TIMEOUT
    while True:
        t = await host.status()
        if t.kills:
            await restart(t)
            reached_at, approvals_from = None, (await host.status()).approval_polls
            progress, deadline = -1, time.monotonic() + SETTLE_TIMEOUT
            continue
        if not t.running:
            raise RuntimeError(f"the service stopped: {t.error}")
        # handled, not polled: a lane may still be acting on a record the poll loop has long passed on
        if reached_at is None and tally.base + t.handled >= tally.delivered:
            reached_at = t.alert_polls
        if reached_at is not None and t.alert_polls > reached_at and t.approval_polls >= approvals_from + rounds:
            return t
        if t.handled != progress:
            progress, deadline = t.handled, time.monotonic() + SETTLE_TIMEOUT
        elif time.monotonic() > deadline:
            raise RuntimeError(stuck(t, tally, offset))
        await asyncio.sleep(0.005)


def stuck(t: Status, tally: Tally, offset: float) -> str:
    """Why a settle gave up: the records not handled, or the loops that did not come round."""
    behind = tally.delivered - tally.base - t.handled
    what = (f"{behind} of the {tally.delivered} alert records delivered not handled "
            f"({tally.base + t.polled} polled)") if behind > 0 else "its consumer loops did not come round"
    return (f"the service did not settle at t+{offset:g}s within {SETTLE_TIMEOUT:g} s (wall): {what}; "
            "the virtual clock was not advanced past it")
