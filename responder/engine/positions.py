"""Where a runbook's run stands: a step's place, the `on_failure` step an escalation id was made from, and where the
run goes on after a decided (released or denied) step."""

from __future__ import annotations

from responder.models.runbook import OnFailure, Runbook, Step


def step_index(rb: Runbook, step: str) -> int | None:
    """The index of the runbook step `step`; None for any other id (an `on_failure` step's, or one gone)."""
    return next((i for i, s in enumerate(rb.steps) if s.id == step), None)


def escalation_step(rb: Runbook, step: str) -> Step | None:
    """The `on_failure` step an escalation id (`<escalation>.<failed step>`) was made from, if the runbook has it."""
    return next((e for e in rb.on_failure if step.startswith(f"{e.id}.")), None)


def after_escalation(rb: Runbook, step: str) -> int | None:
    """Where the runbook goes on once the parked `on_failure` step `step` (`<escalation>.<failed step>`) is decided:
    the index after the failed step when it said `continue`, else None (the run stops there)."""
    index = step_index(rb, step.split(".", 1)[-1])
    return index + 1 if index is not None and rb.steps[index].on_failure is OnFailure.CONTINUE else None


def after_decided(rb: Runbook, step: str, *, ok: bool) -> int | None:
    """Where the run a decision began goes on once its step is past: after a runbook step that passed (`ok`: done or
    skipped) or says `continue`, after the failed step of an escalation that said `continue`; None when nothing of
    the runbook is left to run."""
    index = step_index(rb, step)
    after = after_escalation(rb, step) if index is None else index + 1 if ok or \
        rb.steps[index].on_failure is OnFailure.CONTINUE else None
    return after if after is not None and after < len(rb.steps) else None
