"""Build a scenario's scorecard from its run, sign it and append it to the scenario's timeline."""

from __future__ import annotations

from typing import Any

from responder.models.timeline import EntryKind
from responder.tabletop.decisions import DECISION
from responder.tabletop.decisions import grades as decision_grades
from responder.tabletop.expectations import ExpectKind
from responder.tabletop.failures import TOLD, StepFailure, step_failures
from responder.tabletop.fired import FAULT
from responder.tabletop.fired import grades as fault_grades
from responder.tabletop.grading import (
    CONTAINING,
    SIGNED_WITHOUT,
    Card,
    CardSignature,
    Figures,
    Grade,
    Status,
    cite,
    grade,
    offset,
)
from responder.tabletop.outcome import Run
from responder.tabletop.signed import signed_part
from responder.timeline.checkpoint import Checker, Signer
from responder.timeline.recorder import Recorder
from responder.timeline.store import FileStore

ACTED = ("ok",)


def figures(run: Run) -> Figures:
    """Time to first action and to contain (virtual, after the first inject), actions, collateral."""
    first = run.inject_at.get(run.playbook.injects[0].id, 0.0)
    results = [e for e in run.entries if e.kind == EntryKind.STEP_RESULT and e.body.get("status") in ACTED]
    containing = [e for e in results if str(e.body.get("actuator", "")).startswith(CONTAINING)]
    named = _named(run)
    changed = sorted(k for k in {*run.before, *run.after} if run.before.get(k) != run.after.get(k))
    return Figures(
        time_to_first_action=round(offset(results[0], run.start) - first, 3) if results else None,
        wall_to_first_action=round(run.first_action_wall - run.first_inject_wall, 3)
        if run.first_action_wall is not None and run.first_inject_wall is not None else None,
        time_to_contain=round(offset(containing[-1], run.start) - first, 3) if containing else None,
        actions=len(results), collateral=[k for k in changed if k not in named], restarts=run.restarts, kills=run.kills,
        faults_injected=len(run.faults), virtual_seconds=round(run.end, 3), wall_seconds=round(run.wall, 3),
    )


def _named(run: Run) -> set[str]:
    """`kind/name` of every resource an expectation names (directly, or by id in expected params)."""
    labels = run.bindings.labels()
    out: set[str] = set()
    for exp in run.playbook.expectations:
        for value in (exp.resource, exp.role, *[v for v in exp.params.values() if isinstance(v, str)]):
            if not value:
                continue
            out |= {f"{kind}/{value}" for kind in run.bindings.by_kind if value in run.bindings.by_kind[kind]}
            if value in labels:
                out.add(labels[value])
        if exp.kind == ExpectKind.STATE and exp.resource:
            ep = run.bindings.by_kind.get("endpoints", {}).get(exp.resource)
            if ep is not None:  # isolating an endpoint changes its invoking roles
                out |= {f"roles/{r}" for r in ep.extra.get("invokers", "").split(",") if r}
            key = run.bindings.by_kind.get("keys", {}).get(exp.resource)
            if key is not None:
                out.add(f"users/{key.extra['user']}")
    return out


def improvements(grades: list[Grade], fig: Figures, error: str | None,
                 undelivered: dict[str, str] | None = None, failed: list[StepFailure] | None = None) -> list[str]:
    """What to fix, written from the failures."""
    undelivered = undelivered or {}
    out = [f"The scenario did not finish: {error}. Find what blocked it before trusting the runbooks."] if error else []
    for g in grades:
        if g.status == "PASS":
            continue
        if g.kind == DECISION:
            out.append(f"Must fix: decision `{g.id}` answered nothing, {g.instead}. Fix its step, target or time.")
            continue
        if g.kind == FAULT:
            out.append(f"Must fix: fault `{g.id}`: {g.instead}. Fix its operation or window, or drop it.")
            continue
        lead = "Must fix" if g.must_pass else "Improve"
        out.append(f"{lead}: expectation `{g.id}` ({g.kind}) was {g.status}: {g.instead or 'no evidence'}.")
    for inject, anchor in undelivered.items():
        out.append(f"Inject `{inject}` was never delivered: `{anchor}` was never met. Check that expectation "
                   "(or the anchor chain) before relying on the rest of the scenario.")
    if fig.collateral:
        out.append(f"Review collateral changes no expectation names: {', '.join(fig.collateral)}.")
    return out + _unannounced(failed or [])


def _unannounced(failed: list[StepFailure]) -> list[str]:
    """A line per step with a failure nobody was told of (escalation.missed, its escalation already done or failed)."""
    out = []
    for step in dict.fromkeys(f.step for f in failed if f.told != TOLD):
        mine = [f for f in failed if f.step == step]
        untold = [f"t+{f.t:g}s ({f.told}{', dry run' if f.dry_run else ''})" for f in mine if f.told != TOLD]
        counted = "each counted in responder_step_failures_total" if not all(f.dry_run for f in mine) \
            else "a dry run: planned, not counted; production would count each"
        out.append(f"Review: step `{step}` failed {len(mine)} time(s); nobody was told of {len(untold)}: "
                   f"{', '.join(untold)} ({counted}). Check that on-call hears of a step that keeps failing, and of "
                   "an escalation that fails.")
    return out


def incidents(run: Run) -> list[dict[str, Any]]:
    """Per incident: the entries to draw (virtual offset, kind, label)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for e in run.entries:
        if e.incident and e.kind != EntryKind.CHECKPOINT:
            label = str(e.body.get("step") or e.body.get("runbook") or e.kind)
            out.setdefault(e.incident, []).append({"t": offset(e, run.start), "kind": e.kind, "label": label,
                                                   "status": e.body.get("status"), "evidence": cite(e, run.start)})
    injects = [{"t": t, "kind": "inject", "label": i} for i, t in run.inject_at.items()]
    return [{"incident": k, "entries": v, "injects": injects} for k, v in out.items()]


async def build(run: Run, checker: Checker) -> Card:
    """Grade every expectation and compute the figures."""
    grades = [*[await grade(e, run, checker) for e in run.playbook.expectations], *decision_grades(run),
              *fault_grades(run)]
    total = sum(g.weight for g in grades)
    earned = sum(g.weight * (1.0 if g.status == "PASS" else 0.5 if g.status == "PARTIAL" else 0.0) for g in grades)
    status: Status = "PASS"
    if run.error or any(g.must_pass and g.status != "PASS" for g in grades):
        status = "FAIL"
    elif any(g.status != "PASS" for g in grades):
        status = "PARTIAL"
    fig = figures(run)
    failed = step_failures(run.entries, lambda e: offset(e, run.start))
    return Card(playbook=run.playbook.id, title=run.playbook.title, path=str(run.path), status=status,
                score=round(earned / total, 3) if total else 0.0, grades=grades, figures=fig, error=run.error,
                timeline=str(run.timeline), improvements=improvements(grades, fig, run.error, run.undelivered, failed),
                incidents=incidents(run), deliveries=run.deliveries, defaulted=run.defaulted, failures=failed)


def sign_and_append(card: Card, run: Run, signer: Signer, clock: float) -> CardSignature:
    """Sign the scorecard (Ed25519 over its canonical form, signed.py `signed_part`), set `card.signature`, and
    append it to the scenario's timeline."""
    doc = card.model_dump(mode="json", exclude=set(SIGNED_WITHOUT))
    sig = signer.sign(signed_part(doc))
    body = {"playbook": card.playbook, "status": card.status, "score": card.score, "sha256_of": "scorecard",
            "scorecard": doc, "key_id": signer.key_id, "sig": sig}
    recorder = Recorder(FileStore(run.timeline), signer=signer)
    recorder.clock = lambda: clock
    recorder.append(EntryKind.TABLETOP_SCORECARD, body)
    recorder.close()  # seals with a signed checkpoint over the scorecard entry
    card.signature = CardSignature(key_id=signer.key_id, sig=sig)
    return card.signature
