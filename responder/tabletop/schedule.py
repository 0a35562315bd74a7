"""When each scripted action happens, on the virtual clock.

An inject is due at its `at` offset, or `at` after another inject, or `at` after an expectation was
first seen met (the runner checks the awaited expectations after each settle and calls `meet`).
Decisions are due at their `at`, `kill_at` faults at theirs. A no-op at the end of the longest
expectation window keeps the clock moving until every window has closed. The loader has refused
unknown names and cycles.
"""

from __future__ import annotations

import heapq
from collections.abc import Awaitable, Callable

from responder.tabletop.inject import Record
from responder.tabletop.models import Decision, Inject, KillFault, Playbook

Action = Callable[[], Awaitable[None]]


async def _noop() -> None:
    return None


class Schedule:
    """A heap of (virtual offset, order, action) that grows as injects become due."""

    def __init__(self, pb: Playbook, records: Callable[[Inject, float], list[tuple[float, Record]]],
                 deliver: Callable[[Inject, Record], Action], decide: Callable[[Decision], Action],
                 kill: Action | None = None) -> None:
        self.pb, self.records, self.deliver = pb, records, deliver
        self._heap: list[tuple[float, int, Action]] = []
        self._n = 0
        self.inject_at: dict[str, float] = {}
        self.met: dict[str, float] = {}
        self.waiting = list(pb.injects)
        self.horizon = float("-inf")
        for decision in pb.decisions:
            self._push(decision.at, decide(decision))
        self._release()
        for fault in pb.faults:  # after the injects: a kill at an inject's time comes once it was handled
            if isinstance(fault, KillFault) and fault.kill_at is not None and kill is not None:
                self._push(fault.kill_at, kill)

    def _push(self, at: float, action: Action) -> None:
        heapq.heappush(self._heap, (at, self._n, action))
        self._n += 1

    def _base(self, after: str | None) -> float | None:
        if after is None:
            return 0.0
        return self.inject_at.get(after, self.met.get(after))

    def _release(self) -> None:
        """Schedule every inject whose anchor is now known, then the end of the longest known window."""
        moved = True
        while moved:
            moved = False
            for inject in list(self.waiting):
                base = self._base(inject.after)
                if base is None:
                    continue
                offset = base + (inject.at or 0.0)
                self.inject_at[inject.id] = offset
                self.waiting.remove(inject)
                moved = True
                for delay, record in self.records(inject, offset):
                    self._push(offset + delay, self.deliver(inject, record))
        first = self.pb.injects[0].id
        ends = [self.inject_at[e.after or first] + (e.within or 0.0) for e in self.pb.expectations
                if (e.after or first) in self.inject_at]
        last = max([*ends, *(at for at, _, _ in self._heap)], default=0.0)
        if last > self.horizon:
            self.horizon = last
            self._push(last, _noop)

    def awaited(self) -> list[str]:
        """Expectations that a waiting inject is anchored on and that are not met yet."""
        names = {e.id for e in self.pb.expectations}
        return sorted({i.after for i in self.waiting if i.after in names and i.after not in self.met})

    def meet(self, expectation: str, offset: float) -> None:
        """The expectation was first seen met at `offset`: release what waits on it."""
        self.met.setdefault(expectation, offset)
        self._release()

    def pop(self) -> tuple[float, Action] | None:
        """The next due action (None when the scenario is over)."""
        if not self._heap:
            return None
        at, _, action = heapq.heappop(self._heap)
        return at, action

    def undelivered(self) -> dict[str, str]:
        """Injects never delivered, and the anchor they waited for."""
        return {i.id: str(i.after) for i in self.waiting}
