"""Each failure of a step in a drill, and who heard of it: on-call, nobody, or nobody again.

The service counts every failed or refused step (`responder_step_failures_total`), but an escalation step that already
ran for a step of an incident is `already_done` when the step fails again: a step that keeps failing is announced
once. An escalation step that fails tells nobody either (a drill's `notify.webhook` fails `NoSigningKey`). A drill's
card lists every failure with what its escalation did, so none is invisible.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pydantic import BaseModel, Field

from responder.engine.approvals import TIMED_OUT
from responder.models.timeline import EntryKind, TimelineEntry

TOLD, AGAIN, NOBODY = "told", "not told again", "nobody told"
_PLANNED = {TOLD: "would be told", AGAIN: "would not be told again", NOBODY: "nobody would be told"}  # a dry run's


class StepFailure(BaseModel):
    """One failed, refused or timed-out run of a step, and what its escalation did."""

    t: float
    incident: str
    step: str
    actuator: str
    status: str
    error: str
    told_by: list[str] = Field(default_factory=list, description="escalation steps that ran for it")
    already_done: list[str] = Field(default_factory=list, description="escalation steps skipped: they ran for an "
                                    "earlier failure of the step, so nobody was told of this one")
    escalation_failed: list[str] = Field(default_factory=list, description="escalation steps that ran for it and "
                                         "failed, refused or timed out: nobody was told through them")
    missed: str | None = Field(default=None, description="the escalation.missed reason: nobody was told")
    dry_run: bool = Field(default=False, description="planned, not run: a hard guard would refuse the step, and "
                          "`told_by` lists the escalation steps planned for that refusal")

    @property
    def told(self) -> str:
        """told, not told again, or nobody told."""
        return TOLD if self.told_by else AGAIN if self.already_done else NOBODY

    def line(self) -> str:
        """The failure and who heard of it, as one line."""
        how = ", ".join(self.told_by or self.already_done) or (
            f"escalation.missed: {self.missed}" if self.missed else
            f"escalation failed: {', '.join(self.escalation_failed)}" if self.escalation_failed else
            "an escalation step: never escalated" if "." in self.step else "no escalation recorded")
        status, told = (f"would be {self.status} (dry run)", f"{_PLANNED[self.told]}: planned") if self.dry_run \
            else (self.status, self.told)
        return f"t+{self.t:g}s {self.step} ({self.actuator}) {status}: {self.error}; {told} ({how})"


def _failed(e: TimelineEntry) -> bool:
    status = e.body.get("status")
    return e.kind == EntryKind.STEP_RESULT and (status in ("failed", "refused")
                                                or (status == "denied" and e.body.get("code") == TIMED_OUT))


def _would_refuse(e: TimelineEntry) -> bool:
    """A dry run's plan of a step a hard guard would refuse (its escalation is planned after it)."""
    return e.kind == EntryKind.STEP_PLANNED and e.body.get("would_refuse") is True


def _tells(e: TimelineEntry) -> bool:
    """An escalation step that told someone: it ran, or a dry run planned it (and no guard would refuse it)."""
    return (e.kind == EntryKind.STEP_RESULT and e.body.get("status") == "ok") \
        or (e.kind == EntryKind.STEP_PLANNED and not _would_refuse(e))


def step_failures(entries: Iterable[TimelineEntry], when: Callable[[TimelineEntry], float]) -> list[StepFailure]:
    """Every failure of a step (an escalation step's own failure included), in timeline order, with its outcome."""
    out: list[StepFailure] = []
    latest: dict[tuple[str, str], StepFailure] = {}  # (incident, step) → its latest failure
    escalating: dict[tuple[str, str], StepFailure] = {}  # (incident, escalation step id) → the failure it tells of
    announced: set[int] = set()  # the failures a `step.escalated` named (by id())
    missed_before: dict[int, str] = {}  # a failure after one the last resort recorded → that one's reason
    for e in entries:
        at = (e.incident or "", str(e.body.get("step")))
        planned = _would_refuse(e)
        if planned or _failed(e):
            if (before := latest.get(at)) is not None and before.missed:
                missed_before[len(out)] = before.missed
            out.append(StepFailure(t=when(e), incident=at[0], step=at[1], actuator=str(e.body.get("actuator")),
                                   status="refused" if planned else str(e.body.get("status")), dry_run=planned,
                                   error=str(e.body.get("refusal" if planned else "error") or "")))
            latest[at] = out[-1]
        if (f := escalating.get(at)) is not None:
            # a later failure of the step without its own `step.escalated` (the same alert again, not escalated
            # again since 2026-12-05): the escalation steps run for it
            if (again := latest.get((at[0], at[1].split(".", 1)[-1]))) is not None and id(again) not in announced:
                f = again
            if _tells(e):
                f.told_by.append(at[1])
            elif e.kind == EntryKind.STEP_SKIPPED and e.body.get("reason") == "already_done":
                f.already_done.append(at[1])
            elif _failed(e) or planned:  # failed, or a dry run's plan a guard would refuse
                f.escalation_failed.append(at[1])
        elif (f := latest.get(at)) is not None and e.kind == EntryKind.STEP_ESCALATED:
            ids = e.body.get("escalation")
            escalating |= {(at[0], str(sid)): f for sid in (ids if isinstance(ids, list) else [])}
            announced.add(id(f))
        elif f is not None and e.kind == EntryKind.ESCALATION_MISSED:
            f.missed = str(e.body.get("reason"))
    for n, reason in missed_before.items():  # the same alert again: its last resort is recorded once (2026-12-05)
        if not (out[n].missed or out[n].told_by or out[n].already_done or out[n].escalation_failed):
            out[n].missed = f"{reason}, recorded for the alert's earlier delivery"
    return out
