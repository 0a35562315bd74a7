"""A postmortem draft (Markdown) from the timeline of one real incident; recorded text (an alert's, possibly) is
written as inert Markdown (responder/timeline/markdown.py): it never ends its cell or line."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from responder.engine.undo import UNDO_RESULT, UNDO_SKIPPED
from responder.models.timeline import EntryKind, TimelineEntry
from responder.timeline.evidence import evidence_pack, incident_entries
from responder.timeline.markdown import cell, code, target

TIMELINE_KINDS = (EntryKind.EVENT_RECEIVED, EntryKind.INCIDENT_OPENED, EntryKind.INCIDENT_JOINED,
                  EntryKind.GUARD_TRIPPED, EntryKind.APPROVAL_REQUESTED, EntryKind.APPROVAL_DECIDED,
                  EntryKind.APPROVAL_REJECTED, EntryKind.APPROVAL_EXPIRED, EntryKind.APPROVAL_WITHDRAWN,
                  EntryKind.STEP_RESULT, EntryKind.STEP_SKIPPED, EntryKind.ESCALATION_MISSED, UNDO_RESULT, UNDO_SKIPPED)
APPROVAL_KINDS = (EntryKind.APPROVAL_REQUESTED, EntryKind.APPROVAL_DECIDED, EntryKind.APPROVAL_REJECTED,
                  EntryKind.APPROVAL_EXPIRED, EntryKind.APPROVAL_ESCALATED, EntryKind.APPROVAL_WITHDRAWN)


def _t(entry: TimelineEntry, start: datetime) -> str:
    return f"+{(datetime.fromisoformat(entry.at) - start).total_seconds():.1f}s"


def _what(e: TimelineEntry) -> str:
    b = e.body
    keys = ("type", "source", "runbook", "step", "actuator", "target", "status", "guard", "decision", "by",
            "reason", "error", "on_timeout")
    return cell(", ".join(f"{k}={b[k]}" for k in keys if b.get(k) not in (None, "", [])))


def postmortem(entries: Iterable[TimelineEntry], incident: str) -> str:
    """Summary, detection-to-containment timeline, actions with before/after, approvals, undone, open questions."""
    everything = list(entries)
    mine = incident_entries(everything, incident)
    if not mine:
        return f"# Postmortem draft: incident {cell(incident)}\n\nThe timeline has no entry for this incident.\n"
    pack = evidence_pack(everything, incident, {})
    start = datetime.fromisoformat(mine[0].at)
    opened = next((e for e in mine if e.kind == EntryKind.INCIDENT_OPENED), mine[0])
    events = [e for e in mine if e.kind == EntryKind.EVENT_RECEIVED]
    results = [e for e in mine if e.kind == EntryKind.STEP_RESULT]
    acted = [e for e in results if e.body.get("status") == "ok"]
    first, last = (acted[0], acted[-1]) if acted else (None, None)
    other = ", ".join(sorted({str(e.body.get("status")) for e in results if e.body.get("status") != "ok"})) or "-"
    out = [f"# Postmortem draft: incident {cell(incident)}", "",
           "*Drafted by `responder timeline postmortem` from the hash-chained timeline; edit before circulating.*",
           "", "## Summary", "",
           f"- Runbook: {code(opened.body.get('runbook', '?'))}, group {code(opened.body.get('group_key', '?'))}",
           f"- Detected: {cell(mine[0].at)} from {len(events)} event(s): "
           + cell(", ".join(sorted({f"{e.body.get('source')}/{e.body.get('type')}" for e in events}))),
           f"- Steps: {len(acted)} acted, {len(results) - len(acted)} did not "
           f"({cell(other)})",
           f"- Time to first action: {_t(first, start) if first else 'no action'}; "
           f"time to contain: {_t(last, start) if last else 'not contained'}", "",
           "## Detection-to-containment timeline", "", "| when | seq | what | detail |", "|---|---|---|---|"]
    out += [f"| {_t(e, start)} | {e.seq} | {e.kind} | {_what(e)} |" for e in mine if e.kind in TIMELINE_KINDS]
    out += ["", "## Actions", ""]
    for a in pack["actions"]:
        last_try: dict[str, Any] = a["attempts"][-1] if a["attempts"] else {}
        out += [f"- {code(a['step'])} {code(a['actuator'])} on {target(a['target'])}: **{cell(a['status'])}** "
                f"({len(a['attempts'])} attempt(s))",
                f"  - before: {code(last_try.get('prior'))}", f"  - after: {code(last_try.get('after'))}"]
    if not pack["actions"]:
        out.append("No action was taken.")
    approvals = [e for e in mine if e.kind in APPROVAL_KINDS]
    out += ["", "## Approvals and deciders", ""]
    out += [f"- {_t(e, start)} {e.kind}: {_what(e)}" for e in approvals] or ["No approval was requested."]
    undone = [e for e in everything if e.incident == incident and e.kind in (UNDO_RESULT, UNDO_SKIPPED)]
    out += ["", "## Undone", ""]
    out += [f"- {_t(e, start)} {e.kind}: {_what(e)} (undoes {cell(e.body.get('undoes'))})" for e in undone] or \
        ["Nothing was undone."]
    covered = pack["covering_checkpoint"] is not None
    out += ["", "## Open questions", "", *_questions(mine, pack["actions"], undone, covered)]
    return "\n".join(out) + "\n"


def _questions(mine: list[TimelineEntry], actions: list[dict[str, Any]], undone: list[TimelineEntry],
               covered: bool) -> list[str]:
    """Questions a reviewer should answer, derived from what the timeline shows (and does not)."""
    qs = ["- Was the detection a true positive? Who confirmed it, and how?",
          "- What did the attacker do before detection (CloudTrail before the first event)?"]
    for a in actions:
        if a["status"] != "ok":
            qs.append(f"- Step {code(a['step'])} ended {code(a['status'])}: was the target contained another way?")
    last: dict[object, str] = {}  # each step's last approval entry: a withdrawn request may be asked again
    for e in mine:
        if e.kind in (EntryKind.APPROVAL_REQUESTED, EntryKind.APPROVAL_DECIDED, EntryKind.APPROVAL_EXPIRED,
                      EntryKind.APPROVAL_WITHDRAWN):
            last[e.body.get("step")] = e.kind
    missed = [e for e in mine if e.kind == EntryKind.ESCALATION_MISSED]
    qs += [f"- Step {code(e.body.get('step'))} failed and no escalation step told anyone "
           f"({code(e.body.get('reason'))}): who learned of it, and when?" for e in missed if not e.body.get("dry_run")]
    qs += [f"- Dry run: step {code(e.body.get('step'))} would end {code(e.body.get('status'))} and no escalation step "
           f"would tell anyone ({code(e.body.get('reason'))}): add one before enforcing?"
           for e in missed if e.body.get("dry_run")]
    waiting = [s for s, kind in last.items() if kind == EntryKind.APPROVAL_REQUESTED]
    qs += [f"- Step {code(s)} waited for approval and nobody decided: why?" for s in sorted(waiting, key=str)]
    qs += [f"- Guard {code(e.body.get('guard'))} tripped on {code(e.body.get('step'))}: right limit, or a runbook "
           "to tune?" for e in mine if e.kind == EntryKind.GUARD_TRIPPED]
    if undone:
        qs.append("- Actions were undone: was the response wrong, or was it lifted after recovery?")
    if not covered:
        qs.append("- Is the timeline tail covered by a signed checkpoint (`responder timeline verify --public-key`)?")
    return qs
