"""The engine's state as one value: incidents, step results, in-flight intents, parked approvals, quota windows.

The state changes only through this API. `recovery.fold(state, entry)` folds one timeline entry into it through the
same methods the executor and the decisions module call.
`snapshot()` is a pydantic value (responder/engine/snapshot.py) that can be written elsewhere and `restore()`d,
and `evict()` drops incidents closed for longer than their runbook's window plus cooldown, with their step results,
remembering their group keys (`closed`, responder/engine/closedgroups.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

from pydantic import JsonValue

from responder.engine.approvals import Parked
from responder.engine.closedgroups import ClosedGroups
from responder.engine.incidents import IncidentBook
from responder.engine.quotas import QuotaWindows
from responder.engine.snapshot import DoneStep, EngineSnapshot, InFlight, done_record, inflight_record
from responder.models.plan import idempotency_key
from responder.models.step import StepIntent, StepResult

MAX_CLOSED = 100_000
"""Group keys of evicted incidents remembered (with the time of their last event), newest kept."""
CLOSED_HORIZON = 6 * 3600.0
"""Seconds (engine clock) an evicted group key is remembered: Kafka redelivers only uncommitted, recent records."""


class EngineState:
    """What the engine knows; every change goes through these methods."""

    def __init__(self) -> None:
        self.incidents = IncidentBook()
        self.windows = QuotaWindows()
        self._done: dict[str, DoneStep] = {}
        self._inflight: dict[str, InFlight] = {}
        self._parked: dict[tuple[str, str], Parked] = {}
        self._granted: dict[tuple[str, str], Parked] = {}
        self._continuing: dict[tuple[str, str], tuple[Parked, bool, bool]] = {}
        self.closed = ClosedGroups(MAX_CLOSED, CLOSED_HORIZON)  # the group keys of evicted incidents
        self._planned: dict[str, str] = {}  # a dry run's escalation step keys planned → incident (`Incident.planned`)
        self.notifies: Callable[[str], bool] = frozenset[str]().__contains__  # the engine's registry says
        """Whether an actuator only tells a human (`Actuator.notifies`, `Incident.notified`)."""
        self.forgotten: list[tuple[str, str]] = []
        """(runbook, group key)s the last `evict` or `restore` dropped from the evicted group keys (past the
        horizon, or over the cap): a fleet tombstones their changelog records. Reset by each of those calls."""

    def clear(self) -> None:
        """Forget everything (before a replay)."""
        self.restore(EngineSnapshot())

    # reading

    def result(self, key: str) -> StepResult | None:
        """The result recorded for a step key, if any."""
        done = self._done.get(key)
        return done.result if done is not None else None

    def applied_params(self, key: str) -> dict[str, JsonValue] | None:
        """The params a step key's result was reached with (None when no intent was written)."""
        done = self._done.get(key)
        return done.params if done is not None else None

    def results(self) -> list[StepResult]:
        """Every step result held, oldest first."""
        return [d.result for d in self._done.values()]

    def intent(self, key: str) -> StepIntent | None:
        """The intent of a step key that has no result yet."""
        found = self._inflight.get(key)
        return found.intent if found is not None else None

    def inflight(self) -> list[StepIntent]:
        """Intents written without a result yet."""
        return [f.intent for f in self._inflight.values()]

    def parked(self, incident: str, step: str) -> Parked | None:
        """The parked step, if it waits for a decision."""
        return self._parked.get((incident, step))

    def parked_steps(self) -> list[Parked]:
        """Every parked step."""
        return list(self._parked.values())

    def granted(self) -> list[Parked]:
        """Steps released to run whose result is not recorded yet (while they run, or cut short by a crash)."""
        return list(self._granted.values())

    def continuing(self) -> list[tuple[Parked, bool, bool]]:
        """Released (or denied) steps that are past, with whether they passed (ok or skipped) and whether their failure
        was escalated (`step.escalated`), whose run has not recorded its end (`approval.settled`): the steps after
        them are taken up once the service is back."""
        return list(self._continuing.values())

    def continues(self, incident: str, step: str) -> bool:
        """Whether a decided step past still waits for its run's end (`continuing`)."""
        return (incident, step) in self._continuing

    def escalated(self, incident: str, step: str) -> bool:
        """Whether the failure of a decided step past was escalated in its run (`step.escalated` recorded)."""
        found = self._continuing.get((incident, step))
        return found is not None and found[2]

    def planned(self, key: str) -> bool:
        """Whether a dry run planned this escalation step key (its page would have gone out: production's run of it
        would be done, and skipped as `already_done` when the step fails again in the incident)."""
        return key in self._planned

    def waits(self, incident: str, step: str) -> bool:
        """Whether a step waits for a human, or runs under a release (parked or granted)."""
        return (incident, step) in self._parked or (incident, step) in self._granted

    def closed_until(self, runbook: str, group_key: str) -> float | None:
        """Up to which event time an evicted incident of this group key suppresses events (None: none remembered)."""
        return self.closed.until(runbook, group_key)

    def used(self, incident: str, decision: str) -> bool:
        """Whether this decision (`decision_id`) was applied to a step of the incident already."""
        found = self.incidents.by_id.get(incident)
        return found is not None and decision in found.decisions

    def waiting(self, incident: str, runbook: str) -> bool:
        """Whether a step of this incident's run of `runbook` (ref) waits for a human."""
        parked = self._parked
        return bool(parked) and any(p.incident == incident and p.runbook == runbook for p in parked.values())

    # changing

    def intend(self, intent: StepIntent, incident: str | None, at: float) -> None:
        """An intent was written at `at`: the step is in flight and counts against quotas."""
        if intent.key:
            self._inflight[intent.key] = inflight_record({"incident": incident, "intent": intent})
        runbook = intent.runbook or self._runbook_of(incident)
        self.windows.record(runbook, intent.actuator, at, intent.key)

    def finish(self, result: StepResult, incident: str | None) -> None:
        """A step key has its result: no longer in flight or parked; an ok result's outputs feed later steps.

        A permanent failure changed nothing, so its run is refunded from the quota windows.
        """
        if not result.key:
            return
        self.windows.settle(result.key, result)
        pending = self._inflight.pop(result.key, None)
        params = pending.intent.params if pending is not None else None
        self._done[result.key] = done_record({"incident": incident, "result": result, "params": params})
        if incident:
            self._parked.pop((incident, result.step), None)
            self.passed(incident, result.step, ok=result.ok)
            found = self.incidents.by_id.get(incident)
            if found is not None and result.ok:
                found.applied(result, notifies=self.notifies(result.actuator))
            if found is not None and result.ok and result.outputs is not None:
                found.step_outputs[result.step] = {"result": result.outputs}

    def plan(self, key: str, incident: str) -> None:
        """A dry run planned an escalation step key that no guard would refuse (`planned`, kept by its incident)."""
        self._planned[key] = incident
        found = self.incidents.by_id.get(incident)
        if found is not None:
            found.planned.add(key)

    def park(self, parked: Parked) -> None:
        """A step waits for a decision (again: a new parking replaces the run an earlier decision began). Its intent a
        crash left open forgets its before-state: a human may change the target meanwhile, so the run they release
        reads it again (undo must not restore the older state over their change)."""
        key = idempotency_key(parked.incident, parked.runbook, parked.step, parked.target)
        found = self._inflight.get(key)
        if found is not None and found.intent.before is not None:
            self._inflight[key] = inflight_record({"incident": found.incident,
                                                   "intent": found.intent.model_copy(update={"before": None})})
        self._granted.pop((parked.incident, parked.step), None)
        self._continuing.pop((parked.incident, parked.step), None)
        self._parked[(parked.incident, parked.step)] = parked

    def use(self, incident: str, decision: str) -> None:
        """A decision was applied to a step of the incident: it releases nothing again."""
        found = self.incidents.by_id.get(incident)
        if found is not None:
            found.decisions.add(decision)

    def grant(self, parked: Parked, *, settles: bool = True) -> None:
        """A parked step was released to run: remembered until its result, so a crash inside it is resolved; with
        `settles` (`Parked.settles`), then until its run's end, so a crash before that takes up the steps after it."""
        self._parked.pop((parked.incident, parked.step), None)
        self._granted[(parked.incident, parked.step)] = \
            parked if parked.settles is settles else replace(parked, settles=settles)

    def passed(self, incident: str, step: str, *, ok: bool = True) -> None:
        """A released step has its result (or was skipped): its run goes on to the steps after it."""
        granted = self._granted.pop((incident, step), None)
        if granted is not None and granted.settles:
            self._continuing[(incident, step)] = (granted, ok, False)

    def escalate_failure(self, incident: str, step: str) -> None:
        """A step's failure was escalated (`step.escalated`): noted on its decided run, if one goes on past it."""
        found = self._continuing.get((incident, step))
        if found is not None:
            self._continuing[(incident, step)] = (found[0], found[1], True)

    def deny(self, parked: Parked, *, settles: bool = True) -> None:
        """A parked step was denied: its run goes on to the steps after it that may run (a `continue` step's), and
        with `settles` a crash before that run's end takes them up."""
        if settles:
            self._continuing[(parked.incident, parked.step)] = (replace(parked, settles=True), False, False)

    def settle(self, incident: str, step: str) -> bool:
        """The run a decision (or timeout) began has ended (`approval.settled`); whether it went past the step."""
        self._granted.pop((incident, step), None)
        return self._continuing.pop((incident, step), None) is not None

    def unpark(self, incident: str, step: str) -> Parked | None:
        """The step no longer waits (decided, expired or resumed); returns what was parked."""
        return self._parked.pop((incident, step), None)

    def escalate(self, incident: str, step: str, deadline: float) -> None:
        """The parked step's request was re-published once, with a new deadline."""
        found = self._parked.get((incident, step))
        if found is not None:
            found.escalated, found.deadline = True, deadline

    # as a value

    def snapshot(self) -> EngineSnapshot:
        """The whole state as a serialisable value."""
        return EngineSnapshot(incidents=self.incidents.all(), done=dict(self._done), inflight=dict(self._inflight),
                              parked=list(self._parked.values()), quotas=self.windows.runs(),
                              closed=self.closed.entries(),
                              charges=self.windows.charges(), granted=list(self._granted.values()),
                              continuing=list(self._continuing.values()))

    def restore(self, snapshot: EngineSnapshot) -> None:
        """Replace the whole state with `snapshot` (a dry run's planned steps: its incidents')."""
        self.incidents.load(snapshot.incidents)
        self.windows.load(snapshot.quotas, snapshot.charges)
        self._done = dict(snapshot.done)
        self._inflight = dict(snapshot.inflight)
        self._parked = {(p.incident, p.step): p for p in snapshot.parked}
        self._granted = {(p.incident, p.step): p for p in snapshot.granted}
        self._continuing = {(p.incident, p.step): (p, ok, esc) for p, ok, esc in snapshot.continuing}
        self.forgotten = self.closed.load(snapshot.closed)
        self._planned = {k: i.id for i in self.incidents.by_id.values() for k in i.planned}

    def evict(self, now: float, spans: Mapping[str, tuple[float, float]]) -> list[str]:
        """Drop incidents closed at `now` and their step results, and the quota runs no quota counts any more;
        returns the incident ids dropped. `spans[runbook]` is its (window, cooldown); runbooks missing keep theirs.

        An incident closes window plus cooldown seconds after the engine last saw an event for it (the engine's
        clock), and only when nothing of it is in flight or parked. Events timed up to what it would still have taken
        in (`Incident.quiet_until`) are suppressed after it."""
        busy = {p.incident for p in (*self._parked.values(), *self._granted.values())}
        busy |= {incident for incident, _ in self._continuing}
        busy |= {f.incident for f in self._inflight.values() if f.incident}
        closed = [inc.id for inc in self.incidents.all()
                  if inc.runbook in spans and inc.id not in busy and now - inc.touched > sum(spans[inc.runbook])]
        gone = set(closed)
        self.forgotten = self.closed.expire(now)
        for incident_id in closed:
            inc = self.incidents.by_id[incident_id]
            self.closed.remember(inc.runbook, inc.group_key, inc.quiet_until(*spans[inc.runbook]), now, self.forgotten)
            self.incidents.drop(incident_id)
        self._done = {k: d for k, d in self._done.items() if d.incident not in gone}
        self._planned = {k: i for k, i in self._planned.items() if i not in gone}
        self.windows.prune(now)
        return closed

    def _runbook_of(self, incident: str | None) -> str:
        found = self.incidents.by_id.get(incident or "")
        return found.runbook if found is not None else ""

