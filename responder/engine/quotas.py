"""Quota windows: the execution times per (runbook, actuator) the guards count (responder/engine/guards.py).

A run is kept as long as the longest window of a configured quota that can count it (the runbook's quotas whose
actuator glob matches, for its runbook's window; the global quotas, for the `*` window), so a weekly quota counts
a week; a run no quota can count is not kept. Runs are pruned as they are recorded (the window recorded into) and
by `prune` (every window, at eviction), never while counting: two quotas of the same actuator with different
windows share one window of runs. Every run is kept at least `MIN_KEEP` (2 days, as before quotas were
configured here), so a quota added or lengthened by a redeploy counts the last 2 days at once even where only the
fleet changelog (not the timeline) restores the windows. Until `configure` has been called (a replay before the
runbooks are known), nothing is pruned. Each window is a sorted list, so `count` is a bisection, with no
allocation.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from responder.models.runbook import Quota
from responder.models.step import StepResult

MIN_KEEP = 2 * 86400.0
"""Seconds every run is kept, whatever the quotas configured now (see the module docstring)."""


@dataclass(frozen=True)
class QuotaRun:
    """The recorded execution times of one actuator by one runbook (`*`: by any runbook)."""

    runbook: str
    actuator: str
    times: tuple[float, ...]


@dataclass(frozen=True)
class QuotaCharge:
    """A counted run whose result is not known yet (refunded if it fails permanently)."""

    key: str
    runbook: str
    actuator: str
    at: float


class QuotaWindows:
    """Sliding windows of executions per (runbook, actuator); part of the engine's state."""

    def __init__(self) -> None:
        self._runs: dict[tuple[str, str], list[float]] = {}
        self._by_key: dict[str, tuple[str, str, float, int]] = {}  # step key → its run and when it was recorded
        self._quotas: dict[str, tuple[Quota, ...]] | None = None  # scope → the quotas counting it; None: not known
        self._keep: dict[tuple[str, str], float] = {}  # (scope, actuator) → seconds its runs are kept
        self.recorded = 0
        """Runs recorded so far: a fleet notes it with each `~quotas` record it writes (what that record holds)."""
        self._removed_since: int | None = None  # the earliest `recorded` of a run removed since `take_removed`

    def configure(self, global_quotas: Sequence[Quota], runbook_quotas: Mapping[str, Sequence[Quota]]) -> None:
        """The quotas that count these windows: the global ones (scope `*`) and each runbook's (by runbook id).

        Runs older than what every quota that can count them looks back are dropped now (relative to the latest run
        recorded: the engine's clock has passed it) and from then on."""
        self._quotas = {**{rb: tuple(q) for rb, q in runbook_quotas.items()}, "*": tuple(global_quotas)}
        self._keep = {}
        latest = max((times[-1] for times in self._runs.values() if times), default=None)
        if latest is not None:
            self.prune(latest)

    def keeps(self, scope: str, actuator: str) -> float | None:
        """Seconds a run of `actuator` by `scope` is kept: the longest window of the configured quotas that can count
        it, and at least `MIN_KEEP`; None until the quotas are configured (every run is kept)."""
        if self._quotas is None:
            return None
        found = self._keep.get((scope, actuator))
        if found is None:
            windows = [q.window for q in self._quotas.get(scope, ()) if fnmatchcase(actuator, q.actuator)]
            found = self._keep[(scope, actuator)] = max([MIN_KEEP, *windows])
        return found

    def record(self, runbook_id: str, actuator: str, at: float, key: str | None = None) -> None:
        """Count one execution of `actuator` by `runbook_id` at `at` (epoch seconds of the engine's clock).

        `key` is the step's idempotency key: `settle` refunds the run if its result is a permanent failure that
        changed nothing. A key whose earlier run has no result yet (an open intent run again after a crash or a
        failover) moves its run to `at`: one step counts once, as a fleet-wide slot is held by its step key.
        """
        if key and (earlier := self._by_key.pop(key, None)) is not None:
            self._uncount(*earlier)
        self.recorded += 1
        for scope in (runbook_id, "*"):
            times = self._runs.get((scope, actuator))
            if times is None:  # not setdefault: that builds a list on every run
                times = self._runs[(scope, actuator)] = []
            if not times or times[-1] <= at:
                times.append(at)
            else:  # an intent stamped before one recorded already (concurrent steps): the window stays sorted
                insort(times, at)
            keep = self.keeps(scope, actuator)
            if keep is not None and times[0] < at - keep:  # no quota that can count it looks back that far
                del times[:bisect_left(times, at - keep)]
        if key:
            self._by_key[key] = (runbook_id, actuator, at, self.recorded)

    def settle(self, key: str, result: StepResult) -> None:
        """A step's result: a permanent failure that changed nothing (`StepResult.refundable`) no longer counts."""
        run = self._by_key.pop(key, None)
        if run is None or not result.refundable:
            return
        self._uncount(*run)

    def _uncount(self, runbook_id: str, actuator: str, when: float, seq: int) -> None:
        """Remove one run recorded at `when` (the `seq`th recorded; 0: restored) from its windows (`take_removed`
        says the earliest such run)."""
        self._removed_since = seq if self._removed_since is None else min(self._removed_since, seq)
        for scope in (runbook_id, "*"):
            times = self._runs.get((scope, actuator))
            if times is not None and when in times:
                times.remove(when)

    def count(self, scope: str, pattern: str, window: float, now: float) -> int:
        """Executions by `scope` of actuators matching `pattern` since `now - window` (nothing is dropped here)."""
        horizon = now - window
        total = 0
        for (who, actuator), times in self._runs.items():
            if who == scope and fnmatchcase(actuator, pattern):
                total += len(times) - bisect_left(times, horizon)
        return total

    def prune(self, now: float) -> None:
        """Drop the runs no configured quota can count at `now` any more, and the windows left empty."""
        if self._quotas is None:
            return
        for pair, times in list(self._runs.items()):
            keep = self.keeps(*pair) or 0.0  # configured: a float
            if times and times[0] < now - keep:
                del times[:bisect_left(times, now - keep)]
            if not times:
                del self._runs[pair]

    def runs(self) -> list[QuotaRun]:
        """Every window, as values."""
        return [QuotaRun(who, actuator, tuple(times)) for (who, actuator), times in self._runs.items()]

    def take_removed(self) -> int | None:
        """The earliest `recorded` of the runs removed since the last call (None: none): a fleet's `~quotas` record
        written once that many runs were recorded, or later, may hold one, and a restore's union would count it
        again, so that record is written again."""
        since, self._removed_since = self._removed_since, None
        return since

    def charges(self, keys: Container[str] | None = None) -> list[QuotaCharge]:
        """The counted runs still waiting for their result, as values (only those of `keys` when given)."""
        return [QuotaCharge(key, *run[:3]) for key, run in self._by_key.items() if keys is None or key in keys]

    def load(self, runs: Iterable[QuotaRun], charges: Iterable[QuotaCharge] = ()) -> None:
        """Replace every window with `runs` (kept sorted), and the runs awaiting their result with `charges`."""
        self._runs = {(r.runbook, r.actuator): sorted(r.times) for r in runs}
        self._by_key = {c.key: (c.runbook, c.actuator, c.at, 0) for c in charges}  # 0: in any record written
