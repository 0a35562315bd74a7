"""Incidents: events with the same group key within a runbook's window join one incident."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from responder.models.event import stable_id
from responder.models.step import StepResult


def old_recovered(result: StepResult) -> bool:
    """Whether an ok result was recovered after a crash by the release before 2026-12-08, which recorded no outputs
    for it (this one records them, `{}` when none, with `outputs_rebuilt` when its actuator declares some)."""
    return bool(result.recovered) and result.outputs is None and result.outputs_rebuilt is None


@dataclass
class Owed:
    """What a runbook step's failure is still owed of its escalation (`Incident.owed`)."""

    begun: bool = False
    """Whether its `step.escalated` is recorded (else: an unverified result, not escalated yet)."""
    left: list[str] = field(default_factory=list)
    """The escalation step ids (`<escalation>.<step>`) without an entry yet: each one declared runs once."""
    acted: bool = False
    """Whether one of them had an entry other than a `when` skip (else `escalation.missed` ends it)."""


@dataclass
class Incident:
    """An open incident and the step keys it has completed."""

    id: str
    runbook: str
    group_key: str
    opened_at: datetime
    last_seen: datetime
    events: int = 1
    step_outputs: dict[str, dict[str, object]] = field(default_factory=dict)
    event_ids: set[str] = field(default_factory=set)
    times: list[datetime] = field(default_factory=list)
    touched: float = 0.0
    """When (engine clock, epoch seconds) an event last opened, joined or was suppressed by it."""
    decisions: set[str] = field(default_factory=set)
    """The ids (`decision_id`) of the decisions applied to its steps: a decision delivered again is refused."""
    planned: set[str] = field(default_factory=set)
    """The escalation step keys a dry run planned in it (`EngineState.planned`): in its snapshot and fleet slice, so
    a replica that takes it over plans each page once, as production sends it once."""
    notified: dict[str, str] = field(default_factory=dict)
    """The key of each notify step's ok result, by step id and target (`<step>\\x1f<target>`): a page sent under one
    version of the runbook is not sent again under the next (one page per step and incident, not one per deploy)."""
    owed: dict[str, Owed] = field(default_factory=dict)
    """Runbook steps whose failure is owed an escalation not yet ended, by step id: an unverified result, or
    `step.escalated` recorded without the outcome of each of its escalation steps (an entry of each, or
    `escalation.missed`). Only a crash leaves one: the restart's redelivered event (or decided run) finishes it."""
    escalated: dict[str, str] = field(default_factory=dict)
    """The id of the event whose run last recorded `step.escalated` for a runbook step's failure, by step id: the same
    event again (a redelivery, a finding sent again under its id) whose run fails the step again does not record it
    again. As many as the runbook's steps. A dry run's is kept apart (`escalated_dry`)."""
    escalated_dry: dict[str, str] = field(default_factory=dict)
    """The same, of a dry run's `step.escalated` (it told nobody): it stands for a dry run of the same event again,
    never for a real failure (`was_escalated`)."""
    missed: dict[str, str] = field(default_factory=dict)
    """The id of the event whose run last recorded the last resort (`escalation.missed`, not a dry run's) for a
    runbook step's failure, by step id: the same event again whose run fails the step again does not record it (nor
    page) again; recorded only once it is written, and read back from the timeline, so one that failed or that a
    crash lost is recorded at the redelivery. As many as the runbook's steps."""

    def add(self, at: datetime) -> None:
        """Count one distinct event at `at` (repeats of an event id are not counted)."""
        self.events += 1
        self.times.append(at)
        if len(self.times) > 10_000:
            del self.times[: len(self.times) - 10_000]

    def recent(self, now: datetime, seconds: float) -> int:
        """Distinct events in the sliding span (now - seconds, now]."""
        times = self.times
        start = now - timedelta(seconds=seconds)
        if len(times) == 1:  # a new incident: no generator for its one event
            return 1 if start < times[0] <= now else 0
        return sum(1 for t in times if start < t <= now)

    def quiet_until(self, window: float, cooldown: float) -> float:
        """The latest event time (epoch seconds) this incident would still take in, by joining it (within `window` of
        its last event) or by its `cooldown` (from its opening): once it is evicted, no event up to then acts."""
        return max(self.last_seen.timestamp() + window, self.opened_at.timestamp() + cooldown)

    def owe(self, step: str, escalation: list[str]) -> None:
        """The failure of `step` is owed its escalation: `step.escalated` is recorded, `escalation` steps to run."""
        self.owed[step] = Owed(begun=True, left=list(escalation))

    def reached(self, escalation_step: str, *, acted: bool) -> None:
        """An escalation step (`<escalation>.<step>`) has an entry (`acted`: other than a `when` skip); once each
        has one and one acted, the failure is owed nothing more."""
        owed = self.owed.get(escalation_step.split(".", 1)[1])
        if owed is None or not owed.begun:
            return
        if escalation_step in owed.left:
            owed.left.remove(escalation_step)
        owed.acted = owed.acted or acted
        if not owed.left and owed.acted:
            self.told(escalation_step.split(".", 1)[1])

    def applied(self, result: StepResult, *, notifies: bool) -> None:
        """A step's result is ok: a runbook step's escalation is owed when it did not verify, else nothing is
        (contained); a notify step's key is kept by its step and target (`notified`)."""
        if "." not in result.step:  # a runbook step's (kebab ids: an escalation step's is `<escalation>.<step>`)
            if result.verified is False:
                self.owed[result.step] = Owed()
            else:
                self.owed.pop(result.step, None)
        if notifies and result.key:
            self.notified[f"{result.step}\x1f{result.target}"] = result.key

    def took_outputs(self, result: StepResult, declared: Collection[str] = ()) -> None:
        """An ok result's outputs feed the later steps as `${steps.<id>.result.…}`; the outputs its lost reply carried
        that no read could give (`outputs_lost`) are kept beside them (`lost`, a list, which no runbook path can
        name), so a later step reading one fails rather than reads it as not set (responder/engine/resolution.py).
        A result recovered after a crash by the release before 2026-12-08 recorded no outputs: every output its
        actuator declares (`declared`) was lost."""
        entry: dict[str, object] = {"result": result.outputs or {}}
        lost = result.outputs_lost or (list(declared) if old_recovered(result) else None)
        if lost:
            entry["lost"] = list(lost)
        self.step_outputs[result.step] = entry

    def escalate(self, step: str, event_id: str, *, dry_run: bool) -> None:
        """`event_id`'s run recorded `step.escalated` for the failure of `step` (`dry_run`: a dry run's)."""
        (self.escalated_dry if dry_run else self.escalated)[step] = event_id

    def was_escalated(self, step: str, event_id: str, *, dry_run: bool) -> bool:
        """Whether `event_id`'s run recorded `step.escalated` for `step` already: a real one, or, for a dry run, a dry
        run's too (a dry run's stands for no real failure: on-call heard nothing of it)."""
        return self.escalated.get(step) == event_id or (dry_run and self.escalated_dry.get(step) == event_id)

    def told(self, step: str) -> None:
        """The escalation of `step`'s failure ended (an escalation step's entry, or `escalation.missed`)."""
        self.owed.pop(step, None)

    def seen(self, event_id: str) -> bool:
        """Whether this event id was already part of the incident (a redelivery or repeat); remembers it."""
        if event_id in self.event_ids:
            return True
        if len(self.event_ids) < 10_000:
            self.event_ids.add(event_id)
        return False


class IncidentBook:
    """Open incidents by (runbook, group key); rebuilt from the timeline on start."""

    def __init__(self) -> None:
        self._open: dict[tuple[str, str], Incident] = {}
        self.by_id: dict[str, Incident] = {}

    def find(self, runbook: str, group_key: str, at: datetime, window: float) -> Incident | None:
        """The open incident this event joins, if any."""
        inc = self._open.get((runbook, group_key))
        if inc is None or at - inc.last_seen > timedelta(seconds=window):
            return None
        return inc

    def latest(self, runbook: str, group_key: str) -> Incident | None:
        """The most recent incident for the key, open or not (for cooldown)."""
        return self._open.get((runbook, group_key))

    def open(self, runbook: str, group_key: str, event_id: str, at: datetime) -> Incident:
        """Open a new incident; its id is derived from the first event, so a replay reopens the same one."""
        inc = Incident(stable_id(runbook, group_key, event_id)[:20], runbook, group_key, at, at, times=[at])
        self._open[(runbook, group_key)] = inc
        self.by_id[inc.id] = inc
        return inc

    def restore(self, incident_id: str, runbook: str, group_key: str, at: datetime, event_id: str = "") -> Incident:
        """Re-create an incident read back from the timeline."""
        inc = self.by_id.get(incident_id)
        if inc is None:
            inc = Incident(incident_id, runbook, group_key, at, at)
            self.by_id[incident_id] = inc
        current = self._open.get((runbook, group_key))
        if current is None or current.last_seen <= at:
            self._open[(runbook, group_key)] = inc
        inc.last_seen = max(inc.last_seen, at)
        if event_id:
            inc.seen(event_id)
        return inc

    def all(self) -> list[Incident]:
        """Every incident the book holds, open or closed but not yet evicted."""
        return list(self.by_id.values())

    def load(self, incidents: Iterable[Incident]) -> None:
        """Replace the book with `incidents` (a restored snapshot); the latest per key is the open one."""
        self._open.clear()
        self.by_id = {}
        for inc in sorted(incidents, key=lambda i: i.last_seen):
            self.by_id[inc.id] = inc
            self._open[(inc.runbook, inc.group_key)] = inc

    def drop(self, incident_id: str) -> None:
        """Forget a closed incident."""
        inc = self.by_id.pop(incident_id, None)
        if inc is not None and self._open.get((inc.runbook, inc.group_key)) is inc:
            del self._open[(inc.runbook, inc.group_key)]
