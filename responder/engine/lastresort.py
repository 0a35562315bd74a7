"""The last resort when a failed step's escalation cannot tell anyone: `escalation.missed`, an error log, a count.

A step that failed, was refused, was denied by its timeout or applied unverified is escalated with its runbook's
`on_failure` steps (responder/engine/failing.py). When none can run (the runbook has none, every one was skipped by
its `when`, or the runbook the step was parked under is no longer loaded, or only in dry_run mode), the failure is
recorded as `escalation.missed`: the metrics count it in `responder_escalation_failures_total`, so the alert
`ResponderEscalationFailed` pages whoever it routes to.
"""

from __future__ import annotations

from typing import Literal

import structlog

from responder.engine.approvals import TIMED_OUT
from responder.models.step import Failure, StepResult, StepStatus
from responder.models.timeline import EntryKind
from responder.timeline.recorder import Recorder

log = structlog.get_logger(__name__)

Missed = Literal["no_on_failure", "when", "runbook_removed", "dry_run"]
"""Why no escalation step told anyone: the runbook has no `on_failure` steps; each was skipped by its `when`; the
runbook the step was parked under is no longer loaded, at any version; or the version loaded now runs in dry_run
mode, so its `on_failure` steps would only be planned for a step that waited (and so failed) for real."""

DETAILS: dict[Missed, str] = {
    "no_on_failure": "the runbook has no on_failure steps",
    "when": "the `when` of every on_failure step did not hold",
    "runbook_removed": "the runbook the step waited under is no longer loaded",
    "dry_run": "the runbook's version loaded now runs in dry_run mode: its on_failure steps would only be planned",
}


def escalates(result: StepResult) -> bool:
    """Whether a step's result is a failure on-call must hear of: failed, refused, or denied by its timeout (a human's
    denial is a decision, not a failure)."""
    return result.status in (StepStatus.FAILED, StepStatus.REFUSED) \
        or (result.status is StepStatus.DENIED and result.code == TIMED_OUT)


def record_missed(recorder: Recorder, incident: str, failure: Failure, reason: Missed, *, dry_run: bool = False,
                  **extra: str | list[str]) -> None:
    """Record (and log as an error) a failure no escalation step told anyone of; `dry_run`: it would be (a dry run
    acts on nothing: recorded, not counted)."""
    recorder.append(EntryKind.ESCALATION_MISSED, {**failure.model_dump(), "reason": reason, "detail": DETAILS[reason],
                                                  **extra, **({"dry_run": True} if dry_run else {})}, incident)
    log.error("escalation_missed", step=failure.step, actuator=failure.actuator, reason=reason, dry_run=dry_run)
