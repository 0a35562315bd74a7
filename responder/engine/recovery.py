"""Rebuild engine state from the timeline: a step with a result is never repeated, parked steps stay parked."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from responder.engine.answered import OPERATOR_KEY
from responder.engine.approvals import Parked
from responder.engine.state import EngineState
from responder.engine.undone import UNDO_RESULT, undone_by
from responder.models.step import StepIntent, StepResult
from responder.models.timeline import EntryKind, TimelineEntry

_UNPARK = (EntryKind.APPROVAL_DECIDED, EntryKind.APPROVAL_EXPIRED, EntryKind.APPROVAL_WITHDRAWN)


def replay(state: EngineState, entries: Iterable[TimelineEntry]) -> int:
    """Empty `state`, then fold every entry into it; returns how many entries were read.

    A replay rebuilds everything: it may run again on partition assignment.
    """
    state.clear()
    count = 0
    for entry in entries:
        count += 1
        fold(state, entry)
    return count


def fold(state: EngineState, entry: TimelineEntry) -> None:
    """Fold one timeline entry into `state` (replay after a restart or an assignment), through its methods."""
    kind, body, incident = entry.kind, entry.body, entry.incident
    if kind in (EntryKind.INCIDENT_OPENED, EntryKind.INCIDENT_JOINED) and incident:
        at = datetime.fromisoformat(str(body["event_time"]))
        inc = state.incidents.restore(incident, str(body.get("runbook", "")).split("@", 1)[0],
                                     str(body.get("group_key")), at, str(body.get("event_id", "")))
        if kind == EntryKind.INCIDENT_OPENED and not inc.times:
            inc.times.append(at)
        elif kind == EntryKind.INCIDENT_JOINED and not body.get("repeat"):
            inc.add(at)
        inc.touched = max(inc.touched, datetime.fromisoformat(entry.at).timestamp())
    elif kind == EntryKind.INCIDENT_SUPPRESSED and incident in state.incidents.by_id:
        found = state.incidents.by_id[incident]
        found.touched = max(found.touched, datetime.fromisoformat(entry.at).timestamp())
    elif kind in (EntryKind.STEP_INTENT, EntryKind.STEP_RESULT) and not incident \
            and str(body.get("key", "")).startswith(OPERATOR_KEY):
        return  # an operator model step: the operator's (`Handled.started`), as it never was the engine's while live
    elif kind == EntryKind.STEP_INTENT:
        intent = StepIntent.read(body)
        when = intent.clock if intent.clock is not None else datetime.fromisoformat(entry.at).timestamp()
        state.intend(intent, incident, when)
    elif kind == EntryKind.STEP_RESULT and "key" in body:
        state.finish(StepResult.read(body), incident)
    elif kind == EntryKind.STEP_PLANNED and incident and "failure" in body and body.get("would_refuse") is not True:
        state.plan(str(body.get("key")), incident)  # a dry run's planned escalation step: its page went out once
    elif kind in (EntryKind.STEP_ESCALATED, EntryKind.ESCALATION_MISSED) and incident:
        state.escalate_failure(incident, str(body.get("step")))
    elif kind == EntryKind.STEP_SKIPPED and incident:
        state.passed(incident, str(body.get("step")))  # a released step whose `when` no longer held
    elif kind == EntryKind.APPROVAL_REQUESTED and incident:
        state.park(Parked.from_body(incident, dict(body)))
    elif kind == EntryKind.APPROVAL_ESCALATED and incident:
        state.escalate(incident, str(body["step"]), float(body["deadline"]))  # type: ignore[arg-type]
    elif kind in _UNPARK and incident:
        if kind == EntryKind.APPROVAL_DECIDED and body.get("decision_id"):
            state.use(incident, str(body["decision_id"]))
        parked, settles = state.unpark(incident, str(body["step"])), body.get("settles") is True
        if parked is not None and (body.get("decision") == "approve" or body.get("approve") is True
                                   or kind == EntryKind.APPROVAL_WITHDRAWN):  # released: resumed once
            state.grant(replace(parked, unattended=True) if kind == EntryKind.APPROVAL_EXPIRED else parked,
                       settles=settles)
        elif parked is not None:
            state.deny(parked, settles=settles)
    elif kind == EntryKind.APPROVAL_SETTLED and incident:
        state.settle(incident, str(body.get("step")))
    elif kind == UNDO_RESULT and incident and (undone := undone_by(entry)) is not None:
        state.undo(*undone, incident)  # an operator's undo: a later event of the incident does not apply it again
    if kind in _OWED and incident:
        owed(state, entry)


_OWED = frozenset((EntryKind.STEP_ESCALATED, EntryKind.ESCALATION_MISSED, EntryKind.STEP_RESULT,
                   EntryKind.STEP_SKIPPED, EntryKind.APPROVAL_REQUESTED, EntryKind.STEP_PLANNED))


def owed(state: EngineState, entry: TimelineEntry) -> None:
    """Fold what an entry says of an escalation a failure is owed (`Incident.owed`): begun by `step.escalated` (not a
    dry run's, nor one whose escalation step waits for a human: the run leaves it, and it asks someone); ended by
    `escalation.missed`, or once each of its escalation steps (`<escalation>.<failed step>`) has an entry and one
    of them is other than a `when` skip (a crash between two escalation steps leaves the second owed)."""
    found = state.incidents.by_id.get(entry.incident or "")
    body, step = entry.body, str(entry.body.get("step"))
    if found is None:
        return
    if entry.kind == EntryKind.STEP_ESCALATED:
        if isinstance(event_id := body.get("event_id"), str):  # from 2026-12-05
            found.escalate(step, event_id, dry_run=body.get("dry_run") is True)
        named = body.get("escalation")
        ids = [str(i) for i in named] if isinstance(named, list) else []
        if not body.get("dry_run") and ids and not any(state.waits(found.id, i) for i in ids):
            found.owe(step, ids)
        else:  # as the live run ends it: someone is asked (or a dry run acted on nothing)
            found.told(step)
    elif entry.kind == EntryKind.ESCALATION_MISSED:
        if isinstance(event_id := body.get("event_id"), str) and not body.get("dry_run"):  # from 2026-12-05
            found.missed[step] = event_id
        found.told(step)
    elif "." in step:
        found.reached(step, acted=not (entry.kind == EntryKind.STEP_SKIPPED and body.get("reason") == "when"))
