"""One incident's part of the timeline, and the evidence pack auditors get from `responder timeline export`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import orjson

from responder.models.timeline import EntryKind, TimelineEntry
from responder.timeline.markdown import cell, code, target

DECISIONS = frozenset({EntryKind.EVENT_MATCHED, EntryKind.INCIDENT_OPENED, EntryKind.INCIDENT_JOINED,
                       EntryKind.INCIDENT_SUPPRESSED, EntryKind.STEP_PLANNED, EntryKind.STEP_SKIPPED,
                       EntryKind.GUARD_TRIPPED, EntryKind.APPROVAL_REQUESTED, EntryKind.APPROVAL_DECIDED,
                       EntryKind.APPROVAL_REJECTED, EntryKind.APPROVAL_EXPIRED, EntryKind.APPROVAL_ESCALATED,
                       EntryKind.APPROVAL_WITHDRAWN, EntryKind.APPROVAL_SETTLED, EntryKind.STEP_ESCALATED,
                       EntryKind.ESCALATION_MISSED})


def incident_entries(entries: Iterable[TimelineEntry], incident: str) -> list[TimelineEntry]:
    """The incident's own entries plus the event.received/matched entries of the events that fed it."""
    everything = list(entries)
    feeds: set[tuple[str, str]] = set()
    for e in everything:
        if e.incident == incident and e.kind in (EntryKind.INCIDENT_OPENED, EntryKind.INCIDENT_JOINED,
                                                 EntryKind.INCIDENT_SUPPRESSED):
            feeds.add((str(e.body.get("event_id")), str(e.body.get("runbook"))))
    events = {event for event, _ in feeds}

    def belongs(e: TimelineEntry) -> bool:
        if e.kind == EntryKind.EVENT_RECEIVED:
            return e.body.get("event_id") in events
        if e.kind == EntryKind.EVENT_MATCHED:
            return (str(e.body.get("event_id")), str(e.body.get("runbook"))) in feeds
        return e.incident == incident

    return [e for e in everything if belongs(e)]


def _ms_between(start: str, end: str) -> float:
    return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() * 1000, 3)


def _actions(entries: list[TimelineEntry]) -> list[dict[str, Any]]:
    """Intent → result pairs by idempotency key, in the order they were intended or first resulted. A result without
    its own intent (a step refused before acting, or whose parameters did not resolve: no key, then by step) is an
    attempt of its own, so each failure is listed and none overwrites an earlier result."""
    actions: dict[str, dict[str, Any]] = {}
    for e in entries:
        if e.kind not in (EntryKind.STEP_INTENT, EntryKind.STEP_RESULT):
            continue
        key = str(e.body.get("key", ""))
        act = actions.setdefault(key or f"step {e.body.get('step')}", {
            "step": e.body.get("step"), "actuator": e.body.get("actuator"), "target": e.body.get("target"), "key": key,
            "attempts": []})
        # the last entry's: a runbook edited under one version may run another actuator under a key (each attempt's)
        act["actuator"] = e.body.get("actuator") or act["actuator"]
        if e.kind == EntryKind.STEP_INTENT:
            act["params"] = e.body.get("params")
            act["attempts"].append({"intent_seq": e.seq, "intended_at": e.at, "actuator": act["actuator"]})
        else:
            if not act["attempts"] or "result_seq" in act["attempts"][-1]:
                act["attempts"].append({"actuator": act["actuator"]})
            last = act["attempts"][-1]
            last |= {"result_seq": e.seq, "finished_at": e.at, "status": e.body.get("status"),
                     "changed": e.body.get("changed"), "verified": e.body.get("verified"),
                     **_read_back(e.body),
                     "recovered": bool(e.body.get("recovered")), "error": e.body.get("error"),
                     "prior": e.body.get("prior"), "after": e.body.get("after"),
                     "duration_ms": e.body.get("duration_ms")}
            if "intended_at" in last:
                last["elapsed_ms"] = _ms_between(last["intended_at"], e.at)
            act["status"] = e.body.get("status")
    for act in actions.values():
        act.setdefault("status", "no result recorded (in flight or lost)")
    return list(actions.values())


def _actuators(action: Mapping[str, Any]) -> list[str]:
    """A line naming each attempt's actuator when they differ (one step key run by another actuator), else none."""
    names = [str(t.get("actuator")) for t in action["attempts"]]
    if len(set(names)) < 2:
        return []
    return ["Attempts by actuator, in order: " + ", ".join(code(n) for n in names) + ".", ""]


def _read_back(body: Mapping[str, Any]) -> dict[str, Any]:
    """How the result's read-back went: `verify_reads` (one when it was verified or not at once, none when it never
    read back: a failed or refused step), `settle_ms` (how long it settled; none when it did not) and `verify_error`
    (why it could not be read)."""
    reads = body.get("verify_reads") or (1 if body.get("verified") is not None else None)
    return {"verify_reads": reads, "settle_ms": body.get("settle_ms"), "verify_error": body.get("verify_error")}


def _covering(everything: list[TimelineEntry], mine: list[TimelineEntry]) -> TimelineEntry | None:
    """The first checkpoint after the incident's last entry on that entry's own chain (followed by `prev` links), or
    None unless every entry of the incident has one after it on its own chain: several writers' files are merged, an
    incident may have moved between them, and one file's checkpoint (whatever its seq) covers nothing of another.
    Each link is followed once (a walk stops at an entry already known covered)."""
    after = {e.prev: e for e in everything}
    covered: set[str] = set()
    cover: TimelineEntry | None = None
    for last in reversed(mine):
        walked, entry = [last.hash], after.get(last.hash)
        for _ in everything:  # bounded: a file that does not verify may link in a cycle
            if entry is None or entry.kind == EntryKind.CHECKPOINT or entry.hash in covered:
                break
            walked.append(entry.hash)
            entry = after.get(entry.hash)
        if entry is None or not (entry.kind == EntryKind.CHECKPOINT or entry.hash in covered):
            return None
        cover = cover or entry
        covered.update(walked)
    return cover


def evidence_pack(
    entries: Iterable[TimelineEntry], incident: str, verification: Mapping[str, Any]
) -> dict[str, Any]:
    """Events, decisions, actions (parameters, results, durations), covering checkpoint and the verification."""
    everything = list(entries)
    mine = incident_entries(everything, incident)
    cover = _covering(everything, mine)
    return {
        "incident": incident,
        "generated_from": {"entries": len(everything), "head": everything[-1].hash if everything else None},
        "verification": dict(verification),
        "events": [e.body | {"seq": e.seq, "recorded_at": e.at} for e in mine if e.kind == EntryKind.EVENT_RECEIVED],
        "decisions": [{"seq": e.seq, "at": e.at, "kind": e.kind, **e.body} for e in mine if e.kind in DECISIONS],
        "actions": _actions(mine),
        "covering_checkpoint": cover.model_dump(mode="json") if cover else None,
        "entries": [e.model_dump(mode="json") for e in mine],
    }


def _traces(body: Mapping[str, Any]) -> str:
    return " ← ".join(code(body[k]) for k in ("trace_id", "event_trace_id") if body.get(k)) or "–"


def _verdict(v: Mapping[str, Any]) -> str:
    """The report's verdict line: VERIFIED only when a checked signature covers every entry."""
    why = cell(v.get("reason"))
    match v.get("verdict"):
        case "verified" if v.get("ok"):
            return "VERIFIED"
        case "unsigned_tail" if v.get("ok"):
            return f"VERIFIED up to the last checkpoint; the entries after it NOT proven: {why}"
        case "chain_only":
            return f"NOT PROVEN (no public key: links and hashes only): {why}"
        case "unsigned_offline_tail":
            return f"NOT FULLY PROVEN (unsigned offline tail): {why}"
        case "unsigned_tail_past_interval":
            return f"NOT FULLY PROVEN (unsigned tail past the interval): {why}"
        case "unsigned_tail_two_writers":
            return f"NOT FULLY PROVEN (unsigned tail of two writers): {why}"
        case "unsigned_tail_not_offline":
            return f"NOT FULLY PROVEN (unsigned tail labelled offline): {why}"
        case "signed_unproven_tail":
            return f"NOT FULLY PROVEN (entries signed while unproven, not acknowledged): {why}"
        case "no_entries":
            return f"NOT PROVEN (no entries): {why}"
    return f"NOT VERIFIED at entry {v.get('first_bad_seq')}: {why}"


def render_markdown(pack: Mapping[str, Any]) -> str:
    """The evidence pack as a Markdown report."""
    v = pack["verification"]
    verdict = _verdict(v)
    out = [f"# Evidence pack: incident {cell(pack['incident'])}", "",
           f"**Timeline verification: {verdict}** — {v.get('entries', '?')} entries, "
           f"{v.get('checkpoints', 0)} checkpoints, signatures checked: {v.get('signatures_checked', False)}, "
           f"archive compared: {v.get('archived_entries') is not None}; head {code(v.get('head', ''))}", ""]
    cover = pack.get("covering_checkpoint")
    out += [f"Covered by signed checkpoint seq {cover['seq']} (key {cell(cover['body'].get('key_id'))})." if cover
            else "No checkpoint after this incident's last entry yet: its tail is not signed.", ""]
    out += ["## Events", "", "| seq | event | source | type | severity | time | resources |",
            "|---|---|---|---|---|---|---|"]
    for ev in pack["events"]:
        res = ", ".join(f"{r.get('kind')}:{r.get('id')}" for r in ev.get("resources", []) if isinstance(r, dict))
        out.append(f"| {ev['seq']} | {cell(ev.get('event_id'))} | {cell(ev.get('source'))} | {cell(ev.get('type'))} "
                   f"| {cell(ev.get('severity'))} | {cell(ev.get('time'))} | {cell(res)} |")
    out += ["", "## Decisions", "", "| seq | at | kind | detail |", "|---|---|---|---|"]
    for d in pack["decisions"]:
        detail = ", ".join(f"{k}={d[k]}" for k in ("runbook", "step", "reason", "summary", "guard", "detail",
                                                   "reasons", "decision", "by", "group_key", "escalation", "error")
                           if d.get(k) not in (None, "", []))
        out.append(f"| {d['seq']} | {cell(d['at'])} | {cell(d['kind'])} | {cell(detail)} |")
    out += ["", "## Actions", ""]
    for a in pack["actions"]:
        out += [f"### {cell(a['step'])}: {code(a['actuator'])} on {target(a['target'])} — {cell(a['status'])}", "",
                f"Parameters: {code(orjson.dumps(a.get('params'), option=orjson.OPT_SORT_KEYS).decode(), json=True)}",
                "", *_actuators(a)]
        out += ["| intent seq | intended at | result seq | status | changed | verified | reads | settle ms | recovered "
                "| duration ms | intent→result ms | error |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for t in a["attempts"]:
            error = t.get("error") or (f"read-back: {t['verify_error']}" if t.get("verify_error") else None)
            out.append(f"| {cell(t.get('intent_seq'))} | {cell(t.get('intended_at'))} | {cell(t.get('result_seq'))} "
                       f"| {cell(t.get('status'))} | {cell(t.get('changed'))} | {cell(t.get('verified'))} "
                       f"| {cell(t.get('verify_reads'))} | {cell(t.get('settle_ms'))} "
                       f"| {cell(t.get('recovered'))} | {cell(t.get('duration_ms'))} | {cell(t.get('elapsed_ms'))} "
                       f"| {cell(error)} |")
        out.append("")
    out += ["## Entries", "", "Trace: the OpenTelemetry trace id the entry was recorded in (after an approval, the "
            "decision's, then the alert's).", "", "| seq | at | kind | trace | hash |", "|---|---|---|---|---|"]
    out += [f"| {e['seq']} | {cell(e['at'])} | {cell(e['kind'])} | {_traces(e['body'])} | {code(e['hash'][:16])} |"
            for e in pack["entries"]]
    return "\n".join(out) + "\n"
