"""A cancel landing while a task leaves or waits for the gate (`Gate`, responder/ingest/gate.py) loses nothing: a stop,
a revocation's cut (the gate's holder cancelled, the lanes by `flow.close(cancel=True)`) or a timeout leaves the gate
to the next exclusive holder and the next lanes, however contended any lock the gate might take on the way."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from responder.ingest.gate import Gate

BOUND_S = 1.0  # how long a later entrant may wait before the gate counts as hung (a bound, not a measured duration)
TURNS = 40  # loop turns a cancel is tried at: past the end of the scenario below


class Locks:
    """From now on, every asyncio lock is taken as a contended one is: `held` waits until `free()` (another task
    holds it), `brief` yields to the loop once first. A gate built after this takes its locks, if any, this way."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.held, self.brief = False, False
        self.waiting: dict[asyncio.Task[Any] | None, asyncio.Future[None]] = {}
        take = asyncio.Lock.acquire

        async def acquire(lock: asyncio.Lock) -> bool:
            if self.brief:
                await asyncio.sleep(0)
            if self.held:
                task, turn = asyncio.current_task(), asyncio.get_running_loop().create_future()
                self.waiting[task] = turn
                try:
                    await turn
                finally:
                    del self.waiting[task]
            return await take(lock)

        monkeypatch.setattr(asyncio.Lock, "acquire", acquire)

    def free(self) -> None:
        self.held = False
        for turn in self.waiting.values():
            if not turn.done():
                turn.set_result(None)


async def _hold(gate: Gate, how: str, held: asyncio.Event, leave: asyncio.Event) -> None:
    """Hold `gate` the way `how` says (a lane, an exclusive holder, one that downgraded) until `leave` is set."""
    if how == "shared":
        async with gate.shared():
            held.set()
            await leave.wait()
        return
    async with gate:
        if how == "downgraded":
            await gate.downgrade()
        held.set()
        await leave.wait()


async def _gets_in(enter: Callable[[], AbstractAsyncContextManager[None]]) -> bool:
    """Whether a new entrant gets through `enter()` within `BOUND_S` (False: the gate hangs)."""

    async def in_and_out() -> None:
        async with enter():
            pass

    try:
        await asyncio.wait_for(in_and_out(), BOUND_S)
    except TimeoutError:
        return False
    return True


async def _free(gate: Gate) -> tuple[bool, bool]:
    """Whether a new exclusive holder, then a new lane, get in."""
    return await _gets_in(lambda: gate), await _gets_in(gate.shared)


@pytest.mark.parametrize("how", ["exclusive", "downgraded", "shared"])
async def test_a_holder_cancelled_while_it_leaves_a_contended_gate_still_lets_the_next_ones_in(
        monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    """A holder cancelled as it leaves (any lock it takes held by another task) frees the gate all the same."""
    locks = Locks(monkeypatch)
    gate, held, leave = Gate(), asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(_hold(gate, how, held, leave))
    await asyncio.wait_for(held.wait(), BOUND_S)
    locks.held = True
    leave.set()
    for _ in range(TURNS):  # until it waits for a lock on its way out, or is out (a release that never awaits)
        await asyncio.sleep(0)
        if holder in locks.waiting or holder.done():
            break
    holder.cancel()  # a stop, the revocation cut, a timeout
    locks.free()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(holder, BOUND_S)
    assert (await _free(gate), gate.holder) == ((True, True), None)


async def _exclusive(gate: Gate, downgrade: bool = False) -> None:
    async with gate:
        await asyncio.sleep(0)
        if downgrade:
            await gate.downgrade()
        await asyncio.sleep(0)


async def _lane(gate: Gate) -> None:
    async with gate.shared():
        await asyncio.sleep(0)
        await asyncio.sleep(0)


def _scenario(gate: Gate) -> list[asyncio.Task[None]]:
    """Lanes and exclusive holders (one downgrading) entering together, each waiting for the others in turn."""
    return [asyncio.create_task(c) for c in (_lane(gate), _exclusive(gate), _lane(gate), _exclusive(gate, True),
                                               _lane(gate), _exclusive(gate), _lane(gate))]


@pytest.mark.parametrize("victim", range(7))
async def test_a_cancel_at_any_await_of_entering_or_leaving_leaves_the_gate_right(
        monkeypatch: pytest.MonkeyPatch, victim: int) -> None:
    """One task of a busy gate cancelled at each loop turn in turn: the others end and the gate is left free."""
    locks = Locks(monkeypatch)
    locks.brief = True  # a lock, if the gate takes one, is an await where a cancel may land
    for turn in range(TURNS):
        gate = Gate()
        tasks = _scenario(gate)
        for _ in range(turn):
            await asyncio.sleep(0)
        tasks[victim].cancel()
        _, hung = await asyncio.wait(tasks, timeout=BOUND_S)
        for task in hung:
            task.cancel()
        if hung:
            await asyncio.wait(hung, timeout=BOUND_S)
        assert not hung, f"cancelled at turn {turn}: {len(hung)} task(s) never got through"
        assert (await _free(gate), gate.holder) == ((True, True), None), f"cancelled at turn {turn}"


async def test_a_woken_exclusive_waiter_cancelled_before_it_runs_lets_the_lanes_behind_it_in() -> None:
    """A waiting exclusive holder cancelled once the gate came free, before it ran, lets the lanes behind it in."""
    gate, held, leave = Gate(), asyncio.Event(), asyncio.Event()
    waiters: list[asyncio.Task[None]] = []

    async def holder() -> None:
        await _hold(gate, "exclusive", held, leave)
        waiters[0].cancel()  # its way out woke the waiter, which has not run since

    leaving = asyncio.create_task(holder())
    await held.wait()
    waiters.append(asyncio.create_task(_exclusive(gate)))
    await asyncio.sleep(0)
    lane = asyncio.create_task(_lane(gate))
    await asyncio.sleep(0)
    leave.set()
    await asyncio.wait_for(asyncio.gather(leaving, lane), BOUND_S)
    assert waiters[0].cancelled()
    assert await _free(gate) == (True, True)
