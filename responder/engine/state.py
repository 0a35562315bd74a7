"""The engine's state as one value: incidents, step results, in-flight intents, parked approvals, quota windows.

The state changes only through this API. `recovery.fold(state, entry)` folds one timeline entry into it through the
same methods the executor and the decisions module call.
`snapshot()` is a pydantic value (responder/engine/snapshot.py) that can be written elsewhere and `restore()`d,
and `evict()` drops incidents closed for longer than their runbook's window plus cooldown, with their step results,
remembering their group keys (`closed`, responder/engine/closedgroups.py). The steps a human decides (parked,
granted, continuing) are kept by its base class, `DecidedSteps` (responder/engine/decided.py).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from pydantic import JsonValue

from responder.engine.approvals import Parked
from responder.engine.closedgroups import ClosedGroups
from responder.engine.decided import DecidedSteps
from responder.engine.incidents import IncidentBook, old_recovered
from responder.engine.quotas import QuotaWindows
from responder.engine.snapshot import DoneStep, EngineSnapshot, InFlight, done_record, inflight_record
from responder.engine.undone import Undone
from responder.models.plan import idempotency_key
from responder.models.step import StepIntent, StepResult

MAX_CLOSED = 100_000
"""Group keys of evicted incidents remembered (with the time of their last event), newest kept."""
CLOSED_HORIZON = 6 * 3600.0
"""Seconds (engine clock) an evicted group key is remembered: Kafka redelivers only uncommitted, recent records."""


class EngineState(DecidedSteps):
    """What the engine knows; every change goes through these methods (the decided steps' in DecidedSteps)."""

    def __init__(self) -> None:
        super().__init__()
        self.incidents = IncidentBook()
        self.windows = QuotaWindows()
        self._done: dict[str, DoneStep] = {}
        self._done_of: dict[str, dict[str, None]] = {}  # incident → its keys in `_done`, in `_done`'s order (`slices`)
        self._undone_in: set[str] = set()  # incidents holding an undone result: `undone_as` looks only in those
        self._inflight: dict[str, InFlight] = {}
        self.closed = ClosedGroups(MAX_CLOSED, CLOSED_HORIZON)  # the group keys of evicted incidents
        self._planned: dict[str, str] = {}  # a dry run's escalation step keys planned → incident (`Incident.planned`)
        self.notifies: Callable[[str], bool] = frozenset[str]().__contains__  # the engine's registry says
        """Whether an actuator only tells a human (`Actuator.notifies`, `Incident.notified`)."""
        self.declared: Callable[[str], Collection[str]] = lambda name: ()  # the engine's registry says
        """The outputs an actuator declares (`Actuator.example_outputs`): all lost by a result the release before
        2026-12-08 recovered after a crash (`Incident.took_outputs`)."""
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

    def undone(self, key: str) -> Undone | None:
        """Whether (and by whom) an operator undid the step key's result (`responder/engine/undone.py`)."""
        done = self._done.get(key)
        return done.undone if done is not None else None

    def undone_as(self, incident: str, step: str, target: str,
                  actuator: str) -> tuple[StepResult | None, Undone | None]:
        """The incident's result of `step` on `target` by `actuator` under any runbook version (its key names the
        version) and its undo mark, when an operator undid every ok one: a redeploy does not re-apply an undone step
        (one that now runs another actuator is another step). Else None; at once in an incident with no undo."""
        if incident not in self._undone_in:
            return None, None
        found = [d for k in self._done_of.get(incident, ()) if (d := self._done[k]).result.ok
                 and (d.result.step, d.result.target, d.result.actuator) == (step, target, actuator)]
        if not found or any(d.undone is None for d in found):
            return None, None
        return found[-1].result, found[-1].undone

    def intent(self, key: str) -> StepIntent | None:
        """The intent of a step key that has no result yet."""
        found = self._inflight.get(key)
        return found.intent if found is not None else None

    def inflight(self) -> list[StepIntent]:
        """Intents written without a result yet."""
        return [f.intent for f in self._inflight.values()]

    def planned(self, key: str) -> bool:
        """Whether a dry run planned this escalation step key (its page would have gone out: production's run of it
        would be done, and skipped as `already_done` when the step fails again in the incident)."""
        return key in self._planned

    def closed_until(self, runbook: str, group_key: str) -> float | None:
        """Up to which event time an evicted incident of this group key suppresses events (None: none remembered)."""
        return self.closed.until(runbook, group_key)

    def used(self, incident: str, decision: str) -> bool:
        """Whether this decision (`decision_id`) was applied to a step of the incident already."""
        found = self.incidents.by_id.get(incident)
        return found is not None and decision in found.decisions

    # changing

    def intend(self, intent: StepIntent, incident: str | None, at: float) -> None:
        """An intent was written at `at`: the step is in flight and counts against quotas."""
        if intent.key:
            self._inflight[intent.key] = inflight_record({"incident": incident, "intent": intent})
        runbook = intent.runbook or self._runbook_of(incident)
        self.windows.record(runbook, intent.actuator, at, intent.key)

    def finish(self, result: StepResult, incident: str | None) -> None:
        """A step key has its result: no longer in flight or parked; an ok result's outputs feed later steps.

        A permanent failure that changed nothing (`StepResult.refundable`) is refunded from the quota windows.
        """
        if not result.key:
            return
        self.windows.settle(result.key, result)
        pending = self._inflight.pop(result.key, None)
        params = pending.intent.params if pending is not None else None
        earlier = self._done.get(result.key)
        if earlier is not None and earlier.incident and earlier.incident != incident:  # not from the engine: its keys
            self._done_of.get(earlier.incident, {}).pop(result.key, None)  # hash their incident; a crafted one may not
        self._done[result.key] = done_record({"incident": incident, "result": result, "params": params, "undone": None})
        if incident:
            self._done_of.setdefault(incident, {})[result.key] = None
            self.unpark(incident, result.step)
            self.passed(incident, result.step, ok=result.ok)
            found = self.incidents.by_id.get(incident)
            if found is not None and result.ok:
                found.applied(result, notifies=self.notifies(result.actuator))
            if found is not None and result.ok and (result.outputs is not None or result.outputs_lost
                                                    or old_recovered(result)):
                found.took_outputs(result, self.declared(result.actuator))

    def undo(self, key: str, mark: Undone, incident: str | None) -> bool:
        """An operator's undo reversed the step key's ok result in `incident`: marked, so a later event of the incident
        does not apply it again; False when this state holds no such result (evicted, or another replica's)."""
        done = self._done.get(key)
        if done is None or done.incident != incident or not done.result.ok:
            return False
        self._done[key] = done.model_copy(update={"undone": mark})
        self._undone_in.add(incident or "")
        return True

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
        super().park(parked)

    def use(self, incident: str, decision: str) -> None:
        """A decision was applied to a step of the incident: it releases nothing again."""
        found = self.incidents.by_id.get(incident)
        if found is not None:
            found.decisions.add(decision)

    # as a value

    def snapshot(self) -> EngineSnapshot:
        """The whole state as a serialisable value."""
        return EngineSnapshot(incidents=self.incidents.all(), done=dict(self._done), inflight=dict(self._inflight),
                              parked=self.parked_steps(), quotas=self.windows.runs(),
                              closed=self.closed.entries(),
                              charges=self.windows.charges(), granted=self.granted(), continuing=self.continuing())

    def slices(self, incidents: Collection[str]) -> dict[str, EngineSnapshot]:
        """What `snapshot()` holds of each of `incidents` still held, one slice each (an evicted one is absent: its
        changelog record is a tombstone). Read through `_done_of` and the steps in hand (in flight, charged, decided),
        never the whole state: a fleet's flush costs what it touched, not every open incident and evicted group key."""
        out = {i: EngineSnapshot(incidents=[self.incidents.by_id[i]]) for i in incidents if i in self.incidents.by_id}
        for incident, part in out.items():
            part.done = {key: self._done[key] for key in self._done_of.get(incident, ())}
        keys: dict[str, str] = {}
        for key, flying in self._inflight.items():
            if flying.incident in out:
                out[flying.incident].inflight[key] = flying
                keys[key] = flying.incident
        for parked in self._parked.values():
            if parked.incident in out:
                out[parked.incident].parked.append(parked)
        for granted in self._granted.values():
            if granted.incident in out:
                out[granted.incident].granted.append(granted)
        for carried in self._continuing.values():
            if carried[0].incident in out:
                out[carried[0].incident].continuing.append(carried)
        for charge in self.windows.charges(keys):  # an in-flight step's counted run: its new owner refunds it or
            out[keys[charge.key]].charges.append(charge)  # counts its re-run once
        return out

    def restore(self, snapshot: EngineSnapshot) -> None:
        """Replace the whole state with `snapshot` (a dry run's planned steps: its incidents')."""
        self.incidents.load(snapshot.incidents)
        self.windows.load(snapshot.quotas, snapshot.charges)
        self._done = dict(snapshot.done)
        self._done_of = {}
        for key, done in self._done.items():
            if done.incident:
                self._done_of.setdefault(done.incident, {})[key] = None
        self._undone_in = {d.incident for d in self._done.values() if d.incident and d.undone is not None}
        self._inflight = dict(snapshot.inflight)
        self.load_decided(snapshot.parked, snapshot.granted, snapshot.continuing)
        self.forgotten = self.closed.load(snapshot.closed)
        self._planned = {k: i.id for i in self.incidents.by_id.values() for k in i.planned}
        self._old_recovered()

    def _old_recovered(self) -> None:
        """The steps a snapshot or fleet slice of the release before 2026-12-08 holds recovered after a crash: that
        release kept no outputs for them (no step output, or an empty one), so every declared output is lost."""
        for done in self._done.values():
            found = self.incidents.by_id.get(done.incident or "")
            if found is None or not done.result.ok or not old_recovered(done.result):
                continue
            kept = found.step_outputs.get(done.result.step)
            if kept is None or (not kept.get("result") and "lost" not in kept):
                found.took_outputs(done.result, self.declared(done.result.actuator))

    def evict(self, now: float, spans: Mapping[str, tuple[float, float]]) -> list[str]:
        """Drop incidents closed at `now` and their step results, and the quota runs no quota counts any more;
        returns the incident ids dropped. `spans[runbook]` is its (window, cooldown); runbooks missing keep theirs.

        An incident closes window plus cooldown seconds after the engine last saw an event for it (the engine's
        clock), and only when nothing of it is in flight or parked. Events timed up to what it would still have taken
        in (`Incident.quiet_until`) are suppressed after it."""
        busy = self.deciding() | {f.incident for f in self._inflight.values() if f.incident}
        closed = [inc.id for inc in self.incidents.all()
                  if inc.runbook in spans and inc.id not in busy and now - inc.touched > sum(spans[inc.runbook])]
        gone = set(closed)
        self.forgotten = self.closed.expire(now)
        for incident_id in closed:
            inc = self.incidents.by_id[incident_id]
            self.closed.remember(inc.runbook, inc.group_key, inc.quiet_until(*spans[inc.runbook]), now, self.forgotten)
            self.incidents.drop(incident_id)
        self._done = {k: d for k, d in self._done.items() if d.incident not in gone}
        for incident_id in closed:
            self._done_of.pop(incident_id, None)
        self._undone_in -= gone
        self._planned = {k: i for k, i in self._planned.items() if i not in gone}
        self.windows.prune(now)
        return closed

    def _runbook_of(self, incident: str | None) -> str:
        found = self.incidents.by_id.get(incident or "")
        return found.runbook if found is not None else ""

