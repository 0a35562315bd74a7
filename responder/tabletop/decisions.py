"""Playbook decisions: checked at load (step, target, key, time), answered at run time from the timeline's approval
requests, and graded: a decision that found no request to answer cannot leave its scenario PASS.

Without that grade a `deny` drill could pass because the parked step timed out (silence is a denial), not because
the decision was ever delivered.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

from responder.errors import PlaybookError
from responder.models.runbook import Runbook
from responder.models.timeline import EntryKind, TimelineEntry
from responder.tabletop.eventfile import read_event
from responder.tabletop.grading import Grade
from responder.tabletop.inject import Record, decision_record
from responder.tabletop.models import Decision, Playbook
from responder.tabletop.outcome import Run
from responder.tabletop.world import Bindings

DECISION = "decision"  # the kind of the grade of a decision that answered nothing


def index_of(pb: Playbook, decision: Decision) -> int:
    """The decision's place in the playbook (by identity: two decisions written alike are two decisions)."""
    return next(n for n, d in enumerate(pb.decisions) if d is decision)


def requests_for(decision: Decision, entries: Sequence[TimelineEntry], bindings: Bindings) -> list[TimelineEntry]:
    """The approval requests on the timeline the decision answers: its step, and its target's id in theirs."""
    target = bindings.id_of(decision.target) if decision.target else None
    return [e for e in entries if e.kind == EntryKind.APPROVAL_REQUESTED and e.body.get("step") == decision.step
            and (target is None or target in str(e.body.get("target")))]


def answer(decision: Decision, pb: Playbook, entries: Sequence[TimelineEntry], bindings: Bindings, now: float,
           topic: str) -> Record | str:
    """The signed record answering the latest request the decision names (as `responder approve` does, it names
    that request's id), or why there is none to answer."""
    found = requests_for(decision, entries, bindings)
    if not found:
        return _no_request(decision, entries, bindings)
    request = found[-1]
    asked = request.body.get("request_id")
    return decision_record(decision, pb, str(request.incident), str(request.body["digest"]), now, topic,
                           asked if isinstance(asked, str) else None)


def _no_request(decision: Decision, entries: Sequence[TimelineEntry], bindings: Bindings) -> str:
    labels = bindings.labels()
    parked = sorted({f"{e.body.get('step')} on {labels.get(str(e.body.get('target')), e.body.get('target'))}"
                     for e in entries if e.kind == EntryKind.APPROVAL_REQUESTED})
    on = f" on {decision.target}" if decision.target else ""
    return (f"{decision.decision} of {decision.step}{on} found no approval request to answer (requests so far: "
            f"{', '.join(parked) or 'none'}); it was never sent, so what became of the step was not its doing")


def grades(run: Run) -> list[Grade]:
    """A must-pass FAIL for each decision that answered nothing (the scenario cannot pass as scripted)."""
    out = []
    for n, why in sorted(run.unanswered.items()):
        d = run.playbook.decisions[n]
        out.append(Grade(id=f"decisions.{n}", kind=DECISION, status="FAIL", weight=1.0, must_pass=True,
                         instead=f"t+{d.at:g}s: {why}"))
    return out


def problems(pb: Playbook, base: Path, books: Sequence[Runbook] | None, steps: set[str],
             whole: bool = True) -> Iterator[tuple[str, tuple[int | str, ...]]]:
    """What can be seen before the run: a step no runbook records, a key not in `approval_keys`, a target that is
    no world name (nor a value the injects or runbooks carry), a decision due before any step could be parked; the
    last two only when `whole` (no inject was left out for a schema error: they read the injects)."""
    names = pb.world.names()
    world = sorted({n for kind in names.values() for n in kind})
    first = min((i.at or 0.0 for i in pb.injects if i.after is None), default=0.0)
    for n, d in enumerate(pb.decisions):
        at: tuple[int | str, ...] = ("decisions", n)
        if books is not None and d.step not in steps:
            yield (f"step {d.step!r} is no step a runbook records; choose from {sorted(steps)} (an escalation is "
                   "`<on_failure step>.<failed step>`)"), (*at, "step")
        if whole and d.target is not None and d.target not in world and not carried(d.target, pb, base, books):
            yield (f"target {d.target!r} is no world name (and no inject or runbook carries it); choose from {world}, "
                   "or leave `target` out to answer the step's latest request"), (*at, "target")
        if d.key not in pb.settings.approval_keys:
            yield f"key {d.key!r} is not in settings.approval_keys {sorted(pb.settings.approval_keys)}", (*at, "key")
        if whole and d.at <= first:
            yield (f"at t+{d.at:g}s the decision comes no later than the first inject (t+{first:g}s): no step can "
                   "be parked yet, so it would answer nothing"), (*at, "at")


def carried(value: str, pb: Playbook, base: Path, books: Sequence[Runbook] | None) -> bool:
    """Whether a literal target appears in an inject (event file, overrides, vary) or a runbook step's params."""
    texts = [json.dumps([i.overrides, i.vary]) for i in pb.injects]
    for inject in pb.injects:
        try:
            texts.append(read_event(base, inject.event).decode("utf-8"))
        except (PlaybookError, UnicodeDecodeError, OSError):  # refused, not text or unreadable: reported at the inject
            continue
    for rb in books or ():
        texts += [json.dumps(s.with_, default=str) for s in (*rb.steps, *rb.on_failure)]
    return any(value in t for t in texts)
