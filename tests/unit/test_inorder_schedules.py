"""`in_order` against reading one after another, over random schedules: reads that answer, refuse, fail, or end in a
CancelledError nobody asked for, in any order and at any bound; cancelled reads that end at once, later, or fail;
the caller's deadline or a cancel of it at any point; with and without an eager task factory
(responder/engine/inorder.py). `INORDER_SCHEDULES=20000` runs more than the default."""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from responder.engine.inorder import in_order
from responder.errors import ReadCancelled
from tests.inorder_kit import eager_factory

SCHEDULES = int(os.environ.get("INORDER_SCHEDULES", "2000"))
MAX_STEPS = 400


class Boom(BaseException):
    """An exception that is no `Exception`."""


@dataclass
class Read:
    outcome: str  # nothing | refuse | fail | boom | exit (GeneratorExit) | stray
    on_cancel: str  # end | slow | fail
    immediate: bool  # answers in its first step, not waiting for its gate


@dataclass
class Log:
    raised: list[BaseException] = field(default_factory=list)
    gates: dict[int, asyncio.Event] = field(default_factory=dict)
    cleanup: asyncio.Event = field(default_factory=asyncio.Event)
    ended: bool = False


def _read(k: int, plan: Read, log: Log) -> Callable[[], Awaitable[str | None]]:
    async def read() -> str | None:
        try:
            if not plan.immediate:
                await log.gates[k].wait()
        except asyncio.CancelledError:
            if plan.on_cancel == "slow":
                await log.cleanup.wait()
            elif plan.on_cancel == "fail":
                log.raised.append(error := RuntimeError(f"cleanup {k}"))
                raise error from None
            raise
        if plan.outcome in ("fail", "boom", "exit"):
            log.raised.append(exc := ValueError(k) if plan.outcome == "fail" else Boom(k) if plan.outcome == "boom"
                              else GeneratorExit(k))
            raise exc
        if plan.outcome == "stray":
            raise asyncio.CancelledError
        return f"refused {k}" if plan.outcome == "refuse" else None
    read.__qualname__ = f"read{k}"
    return read


def _sequential(plans: list[Read]) -> tuple[str, Any]:
    """What reading one after another answers, when no read failed and the caller was not cancelled."""
    out: list[str | None] = []
    for k, plan in enumerate(plans):
        if plan.outcome == "stray":
            return "ReadCancelled", k
        assert plan.outcome in ("nothing", "refuse"), plan  # a failing read before the answer has raised
        out.append(f"refused {k}" if plan.outcome == "refuse" else None)
        if plan.outcome == "refuse":
            break
    return "answer", out


async def _schedule(rng: random.Random) -> str:
    """One random schedule, checked; which kind of end it checked."""
    n = rng.randint(1, 4)
    plans = [Read(rng.choice(["nothing", "nothing", "refuse", "refuse", "fail", "boom", "exit", "stray"]),
                  rng.choice(["end", "end", "slow", "fail"]), rng.random() < 0.15) for _ in range(n)]
    at_once = rng.choice([None, *range(1, n + 1)])
    outside = rng.choice(["none", "none", "deadline", "cancel"])
    eager = rng.random() < 0.3
    log = Log(gates={k: asyncio.Event() for k in range(n)})
    reads = [_read(k, plan, log) for k, plan in enumerate(plans)]
    timeouts: list[asyncio.Timeout] = []
    left: list[int] = []  # the cancel requests left in the caller's task when in_order raised

    async def caller() -> tuple[str, Any]:
        try:
            async with asyncio.timeout(None) as timeout:
                timeouts.append(timeout)
                try:
                    return "answer", await in_order(reads, lambda hit: hit is not None, at_once)
                finally:
                    log.ended = True
        except TimeoutError:
            task = asyncio.current_task()
            assert task is not None
            return "TimeoutError", task.cancelling()
        except ReadCancelled as exc:
            return "ReadCancelled", exc
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - the answer compared (Boom, a group with it)
            task = asyncio.current_task()
            assert task is not None
            left.append(task.cancelling())
            return "raised", exc

    loop = asyncio.get_running_loop()
    if eager:
        loop.set_task_factory(eager_factory)  # type: ignore[arg-type]
    task: asyncio.Task[tuple[str, Any]] = asyncio.Task(caller())  # the caller itself is never started eagerly
    asked = False  # the caller cancelled (or its deadline passed) while in_order ran
    for _ in range(MAX_STEPS):
        if task.done():
            break
        action = rng.random()
        if action < 0.35 and (closed := [k for k, gate in log.gates.items() if not gate.is_set()]):
            log.gates[rng.choice(closed)].set()
        elif action < 0.45:
            log.cleanup.set()
        elif action < 0.55 and outside != "none" and not asked and timeouts:
            asked = not log.ended  # the deadline's: when it passes (below), a turn later
            timeouts[0].reschedule(loop.time()) if outside == "deadline" else task.cancel()
        for _ in range(rng.randint(1, 3)):
            await asyncio.sleep(0)
    for gate in (*log.gates.values(), log.cleanup):
        gate.set()
    for _ in range(50):
        if task.done():
            break
        await asyncio.sleep(0)
    loop.set_task_factory(None)
    if outside == "deadline" and timeouts:
        asked = timeouts[0].expired()  # it passed within the block: while in_order ran (it has no other await)
    where = f"plans={plans} at_once={at_once} outside={outside} asked={asked} eager={eager}"
    assert task.done(), f"in_order did not end: {where}"
    assert asyncio.all_tasks() == {asyncio.current_task()}, f"reads left running: {where}"
    got: tuple[str, Any] = ("cancelled", None) if task.cancelled() else task.result()
    if asked and not (n == 1 and plans[0].on_cancel == "fail"):  # a lone read runs in the caller's task
        assert got == (("TimeoutError", 0) if outside == "deadline" else ("cancelled", None)), f"{got}: {where}"
        return f"{outside}{'-alone' if n == 1 else '-after-an-error' if log.raised else ''}"
    elif log.raised:  # the first error raised (several: a group, in the order raised)
        assert got[0] == "raised", f"{got}: {where}"
        leaves = list(got[1].exceptions) if isinstance(got[1], BaseExceptionGroup) else [got[1]]
        assert leaves == log.raised[:len(leaves)], f"{got}: {where} raised={log.raised}"
        assert outside == "cancel" or left == [0], f"cancel requests left: {left}: {where}"  # none but a late cancel
        return "raised"
    else:
        expected = _sequential(plans)
        if expected[0] == "ReadCancelled":
            assert got[0] == "ReadCancelled", f"{got}: {where}"
            assert f"read {expected[1] + 1} of {n} (read{expected[1]})" in str(got[1]), f"{got}: {where}"
            return f"ReadCancelled{'-alone' if n == 1 else ''}"
        assert got == expected, f"{got}: {where}"
        return f"answer{'-eager' if eager else ''}"


def test_in_order_answers_as_reading_one_after_another_over_random_schedules() -> None:
    """Over random schedules, in_order answers as reading one after another would, leaving no read running."""
    ends = Counter(asyncio.run(_schedule(random.Random(seed))) for seed in range(SCHEDULES))
    assert set(ends) >= {"answer", "answer-eager", "raised", "ReadCancelled", "ReadCancelled-alone", "deadline",
                         "deadline-after-an-error", "deadline-alone", "cancel", "cancel-after-an-error",
                         "cancel-alone"}, ends  # each kind of end was checked
