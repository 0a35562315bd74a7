"""Back-test recorded records against runbooks in dry-run: which incidents would open, which steps would run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from responder.actuators.registry import Registry
from responder.engine.executor import Engine
from responder.engine.guards import reason_shape
from responder.errors import EventRejected, PermanentActuationError
from responder.models.event import RawRecord
from responder.models.runbook import Runbook
from responder.models.timeline import EntryKind
from responder.pipeline import Pipeline
from responder.timeline.recorder import Recorder
from responder.timeline.store import MemoryStore


class Offline:
    """The AwsCaller of a back-test: nothing reaches AWS (a dry-run plan that needs AWS says so)."""

    async def call(self, service: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        """Refuse."""
        raise PermanentActuationError(f"replay is offline: {service}.{operation} not called", code="Offline")


class _Step(BaseModel):
    """A step of a runbook for one event: the record whose handling reached it, the incident, the actuator."""

    record: int
    event_id: str
    runbook: str
    incident: str
    step: str
    actuator: str


class Planned(_Step):
    """One step a runbook would run for one event."""

    target: str
    params: dict[str, Any]
    would_require_approval: list[str]

    def key(self) -> tuple[str, str, str, str]:
        """What identifies the same action across two rule sets."""
        return self.event_id, self.runbook.split("@", 1)[0], self.step, self.target


class Failed(_Step):
    """A step that would fail for one event (its parameters do not resolve, in a dry run) or be refused (a hard guard:
    a protected id), and who would hear of it: the escalation steps planned for it, or why nobody would
    (`escalation.missed`), or why not again (`already_done`: planned for an earlier record of the incident, as
    production runs each escalation step once per step and incident)."""

    error: str
    status: str = "failed"
    escalation: list[str] = Field(default_factory=list)
    already_done: list[str] = Field(default_factory=list)
    missed: str | None = None


class Backtest(BaseModel):
    """Everything the records would have caused."""

    records: int
    incidents: list[dict[str, Any]]
    planned: list[Planned]
    rejected: dict[str, int]
    failed: list[Failed] = Field(default_factory=list)


async def backtest(values: Sequence[bytes], runbooks: Sequence[Runbook], registry: Registry) -> Backtest:
    """Run every record through the real pipeline and engine in dry-run, with an in-memory timeline."""
    recorder = Recorder(MemoryStore())
    engine = Engine(recorder, registry, Offline(), dry_run=True)
    pipeline = Pipeline(runbooks, engine)
    # a runbook's `require_signature: true` is a check of how a record arrived, not of what it says: recorded values
    # carry no headers, so the back-test ignores it, as it does RESPONDER_REQUIRE_SIGNATURE (docs/runbooks.md)
    pipeline.signed_only = False
    rejected: dict[str, int] = {}
    for n, value in enumerate(values):
        try:
            await pipeline.handle(RawRecord(topic="replay", offset=n, value=value))
        except EventRejected as exc:
            rejected[exc.reason_code] = rejected.get(exc.reason_code, 0) + 1
        except PermanentActuationError:
            rejected["needs_aws"] = rejected.get("needs_aws", 0) + 1
    await recorder.flush()
    entries = list(recorder.entries())
    offset = {str(e.body.get("event_id")): o.get("offset") for e in entries
              if e.kind == EntryKind.EVENT_RECEIVED and isinstance(o := e.body.get("origin"), dict)}
    opened = {e.incident: e for e in entries if e.kind == EntryKind.INCIDENT_OPENED and e.incident}
    planned: list[Planned] = []
    failed: dict[tuple[str, str], Failed] = {}  # (incident, step) → its latest failure
    failures: list[Failed] = []
    escalating: dict[tuple[str, str], Failed] = {}  # (incident, escalation step) → the failure it would tell of
    announced: set[int] = set()  # the failures a `step.escalated` or `escalation.missed` named (by id())
    event_of: dict[str, str] = {}  # each incident's event being handled: records are handled one at a time, so a
    for e in entries:              # step planned after an event opened or joined its incident was planned for it
        if e.kind in (EntryKind.INCIDENT_OPENED, EntryKind.INCIDENT_JOINED) and e.incident:
            event_of[e.incident] = str(e.body.get("event_id"))
            continue
        event, incident = event_of.get(e.incident or "", ""), e.incident or ""
        where = {"record": offset.get(event, -1), "event_id": event, "incident": incident,
                 "runbook": opened[incident].body.get("runbook") if incident in opened else "?"}
        refused = e.kind == EntryKind.STEP_PLANNED and e.body.get("would_refuse") is True
        if e.kind == EntryKind.STEP_PLANNED:
            planned.append(Planned.model_validate({
                **where, "step": e.body["step"], "actuator": e.body["actuator"], "target": e.body["target"],
                "params": e.body.get("params") or {}, "would_require_approval": e.body.get("would_require_approval")
                or []}))
        if refused or (e.kind == EntryKind.STEP_RESULT and e.body.get("status") in ("failed", "refused")):
            failures.append(Failed.model_validate({
                **where, "step": e.body["step"], "actuator": e.body["actuator"],
                "status": "refused" if refused else e.body["status"],
                "error": str(e.body.get("refusal" if refused else "error") or "")}))
            failed[(incident, str(e.body["step"]))] = failures[-1]
        elif e.kind in (EntryKind.STEP_ESCALATED, EntryKind.ESCALATION_MISSED) \
                and (f := failed.get((incident, str(e.body.get("step"))))) is not None:
            ids = e.body.get("escalation") if e.kind == EntryKind.STEP_ESCALATED else None
            f.escalation += [str(i) for i in ids] if isinstance(ids, list) else []
            escalating |= {(incident, str(i)): f for i in (ids if isinstance(ids, list) else [])}
            f.missed = str(e.body.get("reason")) if e.kind == EntryKind.ESCALATION_MISSED else f.missed
            announced.add(id(f))
        elif e.kind == EntryKind.STEP_SKIPPED and e.body.get("reason") == "already_done" \
                and (f := escalating.get((incident, sid := str(e.body.get("step"))))) is not None:
            again = failed.get((incident, sid.split(".", 1)[-1]))
            if again is not None and id(again) not in announced:  # the same record again: not escalated again
                again.already_done.append(sid)
            elif sid in f.escalation:  # its page went out for an earlier record: not told again
                f.escalation.remove(sid)
                f.already_done.append(sid)
    incidents = [{"incident": i, "runbook": e.body.get("runbook"), "group_key": e.body.get("group_key"),
                  "event_id": e.body.get("event_id")} for i, e in opened.items()]
    return Backtest(records=len(values), incidents=incidents, planned=planned, rejected=rejected, failed=failures)


def difference(new: Backtest, base: Backtest) -> dict[str, list[dict[str, Any]]]:
    """Actions new in `new`, removed from `base`, and changed (same event, runbook, step, target; another actuator,
    other params, or another need for approval: a gate added or dropped)."""
    old = {p.key(): p for p in base.planned}
    now = {p.key(): p for p in new.planned}
    changed = [{"action": now[k].model_dump(), "was": old[k].model_dump()} for k in sorted(now.keys() & old.keys())
               if _compared(now[k]) != _compared(old[k])]
    return {"new": [now[k].model_dump() for k in sorted(now.keys() - old.keys())],
            "removed": [old[k].model_dump() for k in sorted(old.keys() - now.keys())],
            "changed": changed}


def _compared(p: Planned) -> tuple[str, dict[str, Any], set[str]]:
    """What makes an action changed: actuator, params, and its gates (each approval reason without what it counts
    now: a quota that ran 3 times in the baseline and 4 here is the same gate)."""
    return p.actuator, p.params, {reason_shape(r) for r in p.would_require_approval}
