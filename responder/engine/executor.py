"""Run a matched runbook for one event: incident → plan → guards → approval → intent → apply → result.

`Engine` opens, joins or suppresses the incident (`Admission`'s, in responder/engine/admission.py) and runs the
runbook's steps in order; each step's own path (guards, approval, intent, apply) is `StepRunning`'s, in
responder/engine/steps.py, and a failure's `on_failure` steps its base's, `FailureEscalation` (failing.py);
releasing a parked escalation step is `EscalationRelease`'s, in responder/engine/escalation.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import structlog

from responder.actuators.base import ActuationContext, AwsCaller, Publisher
from responder.actuators.registry import Registry
from responder.actuators.retry import VerifySettle
from responder.auth import KeyRing
from responder.engine.admission import MAX_CLOCK_SKEW as MAX_CLOCK_SKEW  # importable here, as before
from responder.engine.admission import Admission
from responder.engine.approvals import Parked
from responder.engine.decisions import Decisions
from responder.engine.escalation import EscalationRelease
from responder.engine.failing import Outcome
from responder.engine.fleetguard import FleetGuard
from responder.engine.grouping import group_key as grouped
from responder.engine.guards import Guards
from responder.engine.iamprincipals import PrincipalForms
from responder.engine.iamrecords import IamRecords
from responder.engine.incidents import Incident
from responder.engine.kmsaliases import KeyAliases
from responder.engine.planner import LazyPlan
from responder.engine.positions import after_escalation, step_index
from responder.engine.recovery import replay
from responder.engine.resumption import EscalationRun
from responder.engine.state import EngineState
from responder.engine.tagreads import ResourceTags
from responder.engine.turns import Turns
from responder.log import context_vars
from responder.models.approval import REQUESTS_TOPIC
from responder.models.event import Event
from responder.models.plan import idempotency_key
from responder.models.runbook import Mode, OnFailure, Runbook
from responder.rules.matcher import Match
from responder.timeline.recorder import Recorder

log = structlog.get_logger(__name__)


_INCIDENT, _RUNBOOK, _EVENT_ID = context_vars("incident", "runbook", "event_id")  # structlog's, set directly
# read once: on Python 3.11 an enum class's attribute goes through `EnumType.__getattr__`'s hook (≈ 0.5 µs each)
_DRY_RUN, _STOP, _PARKED, _FAILED = Mode.DRY_RUN, OnFailure.STOP, Outcome.PARKED, Outcome.FAILED


class Engine(EscalationRelease, Admission):
    """Executes matches against one `EngineState`, so no step key acts twice."""

    def __init__(self, recorder: Recorder, registry: Registry, aws: AwsCaller, *, dry_run: bool = False,
                 guards: Guards | None = None, publisher: Publisher | None = None,
                 approval_keys: KeyRing | None = None, requests_topic: str = REQUESTS_TOPIC,
                 clock: Callable[[], float] = time.time, context: ActuationContext | None = None,
                 fleet_guard: FleetGuard | None = None, verify_settle: VerifySettle | None = None) -> None:
        """`context` carries the actuators' collaborators (publisher, webhook keys, model config); `aws` is theirs;
        `verify_settle`: how long a runbook step's false read-back is read again before it is escalated (none: once)."""
        self.recorder = recorder
        self.context = replace(context, aws=aws) if context is not None else ActuationContext(aws=aws)
        self.registry = registry
        self.aws = aws
        self.dry_run = dry_run
        self.verify_settle = verify_settle
        self.clock = clock
        self.guards = guards or Guards()
        if self.guards.aliases is None:  # a protected KMS alias protects its key: read through this engine's AWS
            self.guards.aliases = KeyAliases(aws)
        records = IamRecords(aws)  # one GetRole/GetUser in flight per role or user, for both readers below
        if self.guards.principals is None:  # a protected unique id or path pattern protects roles and users named
            self.guards.principals = PrincipalForms(aws, records=records)  # by name: their ids and paths read
        if self.guards.tags is None:  # a protected tag protects what a step acts on, its tags read through AWS
            self.guards.tags = ResourceTags(aws, records=records)
        self.fleet_guard = fleet_guard  # global quotas and the kill switch shared by every replica
        self.publisher = publisher
        self.requests_topic = requests_topic
        self.state = EngineState()
        self.state.notifies = lambda name: name in registry and registry.get(name).notifies
        self.state.declared = lambda name: tuple(registry.get(name).example_outputs) if name in registry else ()
        self.runbooks: dict[str, Runbook] = {}
        self.decisions = Decisions(self.state, recorder, keys=approval_keys or KeyRing(), publisher=publisher,
                                   requests_topic=requests_topic, clock=clock, runbook=self.runbooks.get,
                                   resume=self._resume, escalate=self._resume_escalation)
        self.actions = 0
        self._locks: dict[str, Turns] = {}
        self._group_locks: dict[tuple[str, str], Turns] = {}

    def use_runbooks(self, runbooks: Iterable[Runbook]) -> None:
        """The runbooks parked approvals resume with (looked up by id, checked by version); their quotas and the
        global ones are what the quota windows keep runs for."""
        self.runbooks.clear()
        self.runbooks.update((rb.id, rb) for rb in runbooks)
        self.state.windows.configure(self.guards.policy.quotas,
                                     {rb.id: rb.guards.quotas for rb in self.runbooks.values()})

    def recover(self) -> int:
        """Rebuild incidents, completed, in-flight and parked steps from the durable timeline; returns entries read.
        The parked steps' requests are published again (`Asking.recovered`): this process cannot know they were."""
        read = replay(self.state, self.recorder.entries())
        self.decisions.asking.recovered(self.state.parked_steps())
        return read

    def evict(self) -> list[str]:
        """Forget incidents closed (window + cooldown after their last event, on the engine's clock)."""
        return self.state.evict(self.clock(), {rb.id: (rb.window, rb.cooldown) for rb in self.runbooks.values()})

    async def handle(self, match: Match) -> Incident:
        """Open, join or (in cooldown) suppress the incident, then run the runbook's steps in order.

        The incident is serialised against concurrent events of the same group (the group's turn, held while
        its steps run; a lock only while another event of the group waits, see `Turns`).
        """
        rb, event = match.runbook, match.event
        group_key, ungrouped = grouped(rb.group_by, event)
        key = (rb.id, group_key)
        held = self._group_locks.get(key)  # not setdefault: that builds one for every event
        if held is None:
            held = self._group_locks[key] = Turns()
        held.users += 1
        try:
            if held.users > 1:
                await held.wait()
            try:
                incident, fresh, event = self._admit(rb, event, group_key, ungrouped)  # its time clamped, if need be
                if fresh is not None:
                    if fresh:  # a new finding: what a bug stopped of the incident's decided runs is tried again
                        self.decisions.retry_dropped(incident.id)
                    await self.run_from(rb, incident, event, fresh=fresh, redelivered=not fresh)
                return incident
            finally:
                if held.lock is not None:  # the turn's end: the next waiting event, if any, goes
                    held.lock.release()
        finally:
            held.users -= 1
            if held.users == 0:
                del self._group_locks[key]

    def _scope(self, incident: Incident, event: Event, rb: Runbook) -> dict[str, Any]:
        recent = incident.recent(event.time, rb.count_window or rb.window)
        return {"event": event.view(), "steps": incident.step_outputs,
                "incident": {"id": incident.id, "group_key": incident.group_key, "runbook": incident.runbook,
                             "events": incident.events, "recent_events": recent}}

    async def _resume(self, rb: Runbook, incident: Incident, event: Event, start: int,
                      approved: Parked | None) -> None:
        await self.run_from(rb, incident, event, start=start, approved=approved)

    async def _resume_escalation(self, rb: Runbook, incident: Incident, event: Event, parked: Parked,
                                 how: EscalationRun) -> None:
        await self.run_from(rb, incident, event, approved=parked, escalation=how)

    async def run_from(self, rb: Runbook, incident: Incident, event: Event, *, start: int = 0,
                       approved: Parked | None = None, fresh: bool = False, redelivered: bool = False,
                       escalation: EscalationRun | None = None) -> None:
        """Run the runbook's steps from `start`; `approved` is the parked step a human has just released.

        `fresh` says a new, distinct event arrived: a step that already succeeded is verified again and
        re-applied (recorded `reapplied`) when its desired state no longer holds; `redelivered` says the event is
        one the incident had already (`LazyPlan.redelivered`). With `escalation`, `approved` is an
        `on_failure` step released by a human (or `resumed` after a crash cut its release short): it runs alone, then,
        in the same turn, the steps after the failed step if it said `continue` (they waited while it was parked).
        With `failed`, `approved` is a decided runbook step that did not pass, whose run a crash cut short: a failure's
        `on_failure` steps go through the step path again, those waiting for a human left (`_escalated_again`), then
        the steps after it run if it said `continue`.
        """
        turns = self._locks.get(incident.id)  # one run at a time per incident (a resumed approval, a new event)
        if turns is None:
            turns = self._locks[incident.id] = Turns()
        turns.users += 1
        try:
            if turns.users > 1:
                await turns.wait()
        except BaseException:  # cancelled while waiting: never held the turn
            self._leave(incident.id, turns)
            raise
        # structlog's own context variables set directly: `bound_contextvars()` copies the whole context first
        # (~20 us per step), `bind_contextvars` looks each variable up by a name it formats (~3 us). Their values
        # before are set back after (an unbound one is Ellipsis, which structlog leaves out, as its own unbind
        # does): plain values kept while the steps run, where reset tokens were four GC-tracked objects.
        was_incident, was_runbook, was_event = _INCIDENT.get(), _RUNBOOK.get(), _EVENT_ID.get()
        _INCIDENT.set(incident.id)
        _RUNBOOK.set(rb.id)
        _EVENT_ID.set(event.id)
        try:
            scope = self._scope(incident, event, rb)
            dry = self.dry_run or rb.mode is _DRY_RUN
            plan = LazyPlan.of(rb, incident.id, event.id, scope, self.registry, dry_run=dry, redelivered=redelivered)
            if escalation == "replaced" and approved is not None:  # escalated by its runbook's new version, alone
                await self._replaced_escalation(rb, incident, event, scope, plan, approved)
                return
            if escalation in ("failed", "expired") and approved is not None:  # a decided step that did not pass
                index, failed = step_index(rb, approved.step), self.state.result(
                    idempotency_key(incident.id, rb.ref, approved.step, approved.target))
                if failed is not None:  # its escalation (a human's denial has none), or what a crash left of it
                    await self._escalated_again(rb, incident, event, scope, plan, failed,
                                                resumed=escalation == "failed")
                if index is None or rb.steps[index].on_failure is OnFailure.STOP:
                    return
                start, approved = index + 1, None
            elif escalation and approved is not None:  # then, in the same turn, the steps after a failed `continue` one
                outcome = await self._released_escalation(rb, incident, event, plan, approved, escalation == "resumed")
                after = None if approved.alone else after_escalation(rb, approved.step)
                if after is None or outcome is Outcome.PARKED:
                    return
                start, approved = after, None
            plan_trips = self.guards.check_plan(rb, [s.target for s in plan.get().steps]) \
                if self.guards.limits_targets(rb) else ()  # no list kept while the steps run
            for step in rb.steps[start:] if start else rb.steps:  # no copy of the steps for a run from the first
                grant = approved if approved is not None and approved.step == step.id else None
                if grant is None and self.state.waiting(incident.id, rb.ref):
                    return  # an earlier step waits for a human; later steps wait with it
                outcome = await self._run_step(rb, step, incident, event, scope, plan, plan_trips, grant, fresh)
                if outcome is _PARKED:
                    return
                if outcome is _FAILED and step.on_failure is _STOP:
                    return
        finally:
            _EVENT_ID.set(was_event)
            _RUNBOOK.set(was_runbook)
            _INCIDENT.set(was_incident)
            if turns.lock is not None:  # the turn's end: the next waiting run, if any, goes
                turns.lock.release()
            self._leave(incident.id, turns)

    def _leave(self, incident_id: str, turns: Turns) -> None:
        """One run fewer holds or waits for the incident's turn; forgotten at none."""
        turns.users -= 1
        if turns.users == 0:
            del self._locks[incident_id]

    async def decide(self, value: bytes, key_id: str | None, signature: str | None) -> bool:
        """Apply a signed decision from the approvals topic or CLI; False (and recorded) when refused."""
        return await self.decisions.decide(value, key_id, signature)

    async def expire(self) -> int:
        """Apply `on_timeout` to parked steps whose deadline has passed; returns how many were handled."""
        return await self.decisions.expire()
