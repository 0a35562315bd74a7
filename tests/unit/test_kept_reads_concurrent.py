"""A step's guard reads through AWS (`KeptReads.forms`) run concurrently, at most `CONCURRENCY` at once, and answer as
reading them one after another in sorted order does: the union of the forms, or the refusal of the first key in that
order that cannot be read, whichever read ends first; cancelling the caller cancels the reads in flight."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from itertools import pairwise
from typing import Any

import pytest

from responder.engine.keptreads import KeptReads
from responder.errors import PermanentActuationError
from responder.threadpools import AWS_THREADS_PER_SERVICE
from tests.guard_kit import YIELDS, Boom, NoAws, SettableClock, let_tasks_run

FORMS = {f"k{i}": frozenset({f"f{i}", "shared"}) for i in range(10)}
UNION = {f for forms in FORMS.values() for f in forms}


class Reads(KeptReads):
    """Forms of `FORMS`, each read waiting for `gate` (when set up) and its `until` condition (at most `YIELDS`
    turns of the loop); keys in `fail` are refused, `boom` raises `Boom`. Counts the reads in flight, records ends."""

    CONCURRENCY = 3

    def __init__(self, *, fail: tuple[str, ...] = (), boom: str = "",
                 until: dict[str, Callable[[], bool]] | None = None) -> None:
        super().__init__(NoAws(), clock=SettableClock())
        self.fail, self.boom, self.until = fail, boom, until or {}
        self.gate: asyncio.Event | None = None
        self.in_flight = self.peak = 0
        self.finished: list[str] = []
        self.cancelled: list[str] = []

    async def _read(self, key: str) -> frozenset[str]:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            if self.gate is not None:
                await self.gate.wait()
            for _ in range(YIELDS):
                if self.until.get(key, lambda: True)():
                    break
                await asyncio.sleep(0)
        except asyncio.CancelledError:
            self.cancelled.append(key)
            raise
        finally:
            self.in_flight -= 1
        self.finished.append(key)
        if key == self.boom:
            raise Boom(key)
        if key in self.fail:
            raise PermanentActuationError(f"AccessDenied: {key}", code="AccessDenied")
        return FORMS.get(key, frozenset({key}))

    def _unreadable(self, key: str, exc: Exception) -> str:
        return f"{key} could not be read: {exc}"


@pytest.mark.parametrize("concurrency", [3, 64])
def test_reads_overlap_up_to_the_bound_and_never_above(concurrency: int) -> None:
    """Reads run together, as many as `CONCURRENCY` (or an AWS service pool's threads) and never more."""
    threads = AWS_THREADS_PER_SERVICE  # an AWS service's pool, where `AwsSession.call` runs boto3
    keys = {f"k{i}" for i in range(40)}  # k10… read as their own name
    expected = min(concurrency, threads)

    async def scenario() -> tuple[int, Reads, set[str] | str]:
        reads = Reads()
        reads.CONCURRENCY = concurrency
        reads.gate = asyncio.Event()
        task = asyncio.create_task(reads.forms(keys))
        try:
            await let_tasks_run()
            in_flight = reads.in_flight
            reads.gate.set()
            return in_flight, reads, await task
        finally:
            task.cancel()

    in_flight, reads, found = asyncio.run(scenario())
    assert in_flight == expected  # one after another: 1
    assert reads.peak == expected
    assert found == UNION | (keys - set(FORMS))


def test_the_refusal_is_the_first_failing_key_in_sorted_order_even_when_it_ends_last() -> None:
    """k0 and k1 cannot be read, k1's read ends first: the step is refused with k0's refusal."""
    reads = Reads(fail=("k0", "k1"))
    reads.until = {"k0": lambda: "k1" in reads.finished}
    found = asyncio.run(reads.forms({"k0", "k1", "k2"}))
    assert reads.finished[:2] == ["k1", "k0"]  # one after another: ["k0"] (k0 read alone, then refused)
    assert found == "k0 could not be read: AccessDenied: k0"


def test_the_union_is_the_one_read_in_sorted_order_whatever_order_the_reads_end_in() -> None:
    """Reads ending in reverse order give the union of every key's forms, each key's forms kept."""
    keys = sorted(FORMS)[:6]
    reads = Reads()
    reads.CONCURRENCY = len(keys)
    reads.until = {k: (lambda after=after: after in reads.finished) for k, after in pairwise(keys)}
    found = asyncio.run(reads.forms(keys))
    assert reads.finished == keys[::-1]  # one after another: in sorted order
    assert found == {f for k in keys for f in FORMS[k]}
    assert reads.kept(keys) == found
    assert asyncio.run(Reads().forms(())) == set()  # no key: nothing read


def test_cancelling_the_caller_cancels_every_read_in_flight_and_leaves_no_task() -> None:
    """The guard's deadline (a cancellation) cancels each read in flight; no read task is left running."""

    async def scenario() -> tuple[int, Reads, set[asyncio.Task[Any]]]:
        reads = Reads()
        reads.gate = asyncio.Event()  # never set: the reads hang until cancelled
        task = asyncio.create_task(reads.forms(FORMS))
        await let_tasks_run()
        in_flight = reads.in_flight
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return in_flight, reads, asyncio.all_tasks() - {asyncio.current_task()}

    in_flight, reads, left = asyncio.run(scenario())
    assert in_flight == Reads.CONCURRENCY  # one after another: 1
    assert sorted(reads.cancelled) == sorted(FORMS)[:Reads.CONCURRENCY]
    assert reads.in_flight == 0
    assert not left


def test_an_exception_the_read_does_not_catch_ends_forms_with_it_and_cancels_the_other_reads() -> None:
    """A `BaseException` from one read is raised as it is (not swallowed), the reads still in flight cancelled."""
    reads = Reads(boom="k1", until={"k0": lambda: False})

    async def scenario() -> tuple[set[asyncio.Task[Any]], int]:
        with pytest.raises(Boom):
            await reads.forms({"k0", "k1"})
        task = asyncio.current_task()
        assert task is not None
        return asyncio.all_tasks() - {task}, task.cancelling()

    left, cancelling = asyncio.run(scenario())
    assert not left
    assert cancelling == 0  # Python 3.11's TaskGroup leaves 1: a later `asyncio.timeout` would raise CancelledError
    assert reads.cancelled == ["k0"]  # one after another: k0 read to its end first, nothing cancelled

