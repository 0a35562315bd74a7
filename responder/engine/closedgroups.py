"""The engine's memory of evicted incidents' group keys: an event of one timed up to what its incident would still
have taken in is suppressed (a Kafka redelivery), for a horizon after the eviction and up to a cap, newest kept.

`EngineState` (responder/engine/state.py) holds one as `closed`, sets its bounds and reports what it forgets
(`forgotten`: a fleet tombstones their changelog records).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable


class ClosedGroups:
    """(runbook, group key) → (event time suppressed up to, engine time evicted at), oldest eviction first."""

    def __init__(self, cap: int, horizon: float) -> None:
        """At most `cap` group keys, each for `horizon` seconds (engine clock) after its eviction."""
        self.cap, self.horizon = cap, horizon
        self._keys: OrderedDict[tuple[str, str], tuple[float, float]] = OrderedDict()

    def until(self, runbook: str, group_key: str) -> float | None:
        """Up to which event time an evicted incident of this group key suppresses events (None: none remembered)."""
        found = self._keys.get((runbook, group_key))
        return found[0] if found is not None else None

    def entries(self) -> list[tuple[str, str, float, float]]:
        """(runbook, group key, suppressed up to, evicted at) of each, oldest eviction first (the snapshot's)."""
        return [(rb, key, at, gone) for (rb, key), (at, gone) in self._keys.items()]

    def load(self, closed: Iterable[tuple[str, str, float, float]]) -> list[tuple[str, str]]:
        """Replace what is remembered with `entries()`-like values; returns the group keys dropped over the cap."""
        self._keys = OrderedDict()
        forgotten: list[tuple[str, str]] = []
        # oldest eviction first: `expire` pops the horizon's from the front (merged slices come in any order)
        for rb, key, at, gone in sorted(closed, key=lambda c: c[3]):
            self.remember(rb, key, at, gone, forgotten)
        return forgotten

    def expire(self, now: float) -> list[tuple[str, str]]:
        """Forget the group keys evicted longer than the horizon before `now`; returns them, oldest first."""
        keys = self._keys
        forgotten: list[tuple[str, str]] = []
        while keys and next(iter(keys.values()))[1] < now - self.horizon:
            forgotten.append(keys.popitem(last=False)[0])
        return forgotten

    def remember(self, runbook: str, group_key: str, at: float, evicted: float,
                 forgotten: list[tuple[str, str]]) -> None:
        """An incident of this group key was evicted at `evicted`, suppressing events up to `at` (the later of this
        and what was remembered); the oldest over the cap are dropped, appended to `forgotten`."""
        key = (runbook, group_key)
        before = self._keys.get(key)
        self._keys[key] = (max(at, before[0]) if before else at, evicted)
        self._keys.move_to_end(key)
        while len(self._keys) > self.cap:
            forgotten.append(self._keys.popitem(last=False)[0])
