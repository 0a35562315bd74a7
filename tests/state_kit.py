"""An engine state built with the engine's own API: open incidents with done, in-flight and decided steps, and
evicted group keys (the fleet's slicing tests and bench/slices.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from responder.engine.approvals import Parked
from responder.engine.incidents import Incident
from responder.engine.snapshot import EngineSnapshot
from responder.engine.state import EngineState
from responder.models.step import StepIntent, StepResult, StepStatus

NOW = datetime(2026, 12, 7, tzinfo=UTC)


def parked(incident: str, step: str) -> Parked:
    """A step of `incident` waiting for a decision."""
    return Parked(incident=incident, step=step, runbook="rb", actuator="test.wipe", target="t", params={},
                  digest="d", reasons=[], approvers=[], deadline=10.0, on_timeout="deny", event={})


def busy_state(incidents: int, closed: int = 0, *, flying: int | None = None, decided: bool = True) -> EngineState:
    """`incidents` incidents `i<n>`, each with a done step (`done<n>`); the first `flying` (all by default) with a
    counted step in flight (`fly<n>`); with `decided`, each with a step parked, granted (n % 3 == 1) or denied and
    continuing (n % 3 == 2); `closed` evicted group keys; and a done and an in-flight step of no incident."""
    state = EngineState()
    state.restore(EngineSnapshot(
        incidents=[Incident(id=f"i{n}", runbook="rb", group_key=f"g{n}", opened_at=NOW, last_seen=NOW)
                   for n in range(incidents)],
        closed=[("rb", f"c{n}", 1.0, float(n)) for n in range(closed)]))
    for n in range(incidents):
        state.intend(StepIntent(step="a", actuator="test.echo", key=f"done{n}", runbook="rb"), f"i{n}", 1.0)
        state.finish(StepResult(step="a", actuator="test.echo", key=f"done{n}", status=StepStatus.OK), f"i{n}")
        if flying is None or n < flying:
            state.intend(StepIntent(step="b", actuator="test.echo", key=f"fly{n}", runbook="rb"), f"i{n}", 2.0)
        if decided:
            step = parked(f"i{n}", "c")
            state.park(step)
            if n % 3 == 1:
                state.grant(step)
            elif n % 3 == 2:
                state.deny(step)
                state.unpark(f"i{n}", "c")
    state.intend(StepIntent(step="z", actuator="test.echo", key="loose", runbook="rb"), None, 3.0)
    state.finish(StepResult(step="z", actuator="test.echo", key="loose-done", status=StepStatus.OK), None)
    return state
