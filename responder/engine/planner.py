"""The planner: resolve a runbook's steps for one incident into concrete, validated parameters and targets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from responder.actuators.registry import Registry
from responder.engine.resolution import Resolved, resolve_step
from responder.models.plan import Plan, PlannedStep, idempotency_key
from responder.models.runbook import Runbook


def build_plan(rb: Runbook, incident: str, event_id: str, scope: Mapping[str, Any], registry: Registry,
               *, dry_run: bool) -> Plan:
    """Every step whose `when` holds and whose parameters resolve now.

    Steps reading `${steps.<id>.result.…}` of a step that has not run yet are not in the plan; they are
    planned when their inputs exist. The plan digest binds approvals to exactly these steps and values.
    """
    steps = []
    for step in rb.steps:
        resolved = resolve_step(step, scope, registry)
        if not isinstance(resolved, Resolved):
            continue
        steps.append(PlannedStep(
            step_id=step.id, actuator=step.actuator, params=resolved.values, target=resolved.target,
            key=idempotency_key(incident, rb.ref, step.id, resolved.target),
            destructive=resolved.actuator.destructive, on_failure=step.on_failure.value, timeout=step.timeout,
            retries=step.retries,
        ))
    return Plan(incident=incident, runbook=rb.ref, event_id=event_id, dry_run=dry_run, steps=tuple(steps))


class LazyPlan:
    """The plan of one run, built only when something needs it (a digest, a max-targets guard).

    It holds `build_plan`'s arguments in its own slots: one object the cyclic collector walks for as long as the
    run is alive (a partial was three: itself, its arguments and its keywords; a closure, a cell per argument)."""

    __slots__ = ("_dry_run", "_event_id", "_incident", "_plan", "_rb", "_registry", "_scope", "redelivered")

    def __init__(self, rb: Runbook, incident: str, event_id: str, scope: Mapping[str, Any], registry: Registry,
                 dry_run: bool, redelivered: bool = False) -> None:
        self._rb, self._incident, self._event_id, self._scope = rb, incident, event_id, scope
        self._registry, self._dry_run = registry, dry_run
        self._plan: Plan | None = None
        self.redelivered = redelivered
        """The run is of an event the incident already had (a redelivery, or a source sending the same finding id
        again): a step failure it escalated already is not recorded as escalated again (`FailureEscalation`)."""

    @classmethod
    def of(cls, rb: Runbook, incident: str, event_id: str, scope: Mapping[str, Any], registry: Registry,
           *, dry_run: bool, redelivered: bool = False) -> LazyPlan:
        """`build_plan(...)` with these arguments, when needed."""
        return cls(rb, incident, event_id, scope, registry, dry_run, redelivered)

    def get(self) -> Plan:
        """Build once, then reuse."""
        if self._plan is None:
            self._plan = build_plan(self._rb, self._incident, self._event_id, self._scope, self._registry,
                                    dry_run=self._dry_run)
        return self._plan
