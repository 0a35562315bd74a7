"""Grade a finished run: each expectation PASS, FAIL or PARTIAL with its evidence; the scenario's figures."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from responder.errors import ActuationError, ChainBroken
from responder.models.timeline import EntryKind, TimelineEntry
from responder.tabletop.expectations import Expectation, ExpectKind
from responder.tabletop.failures import StepFailure
from responder.tabletop.outcome import Run
from responder.tabletop.state import check_state
from responder.timeline.checkpoint import Checker
from responder.timeline.verify import verify_lines

Status = Literal["PASS", "FAIL", "PARTIAL"]
CONTAINING = ("aws.", "model.")  # actuators that change the cloud or the model registry (not notify.*)


class Grade(BaseModel):
    """One expectation's verdict."""

    id: str
    kind: str
    status: Status
    weight: float
    must_pass: bool
    evidence: list[str] = Field(default_factory=list, description="timeline entries (seq kind detail) or state read")
    instead: str = Field(default="", description="what happened instead, when not PASS")


class Figures(BaseModel):
    """Scenario figures, in virtual seconds after the first inject."""

    time_to_first_action: float | None = Field(
        default=None, description="virtual s from the first inject to the first acted step (the virtual clock stands "
                                  "still while the service works, so a prompt response reads 0)")
    wall_to_first_action: float | None = Field(
        default=None, description="wall s from delivering the first alert record to recording the first acted step: "
                                  "the service's real processing time (decode, match, guards, the AWS call)")
    time_to_contain: float | None = None
    actions: int = 0
    collateral: list[str] = Field(default_factory=list)
    restarts: int = 0
    kills: list[dict[str, Any]] = Field(default_factory=list, description="each SIGKILL: at, pid, returncode, during")
    faults_injected: int = 0
    virtual_seconds: float = 0.0
    wall_seconds: float = 0.0


SIGNED_WITHOUT = ("incidents", "signature")  # a card's fields its signature does not cover (signed.py)


class CardSignature(BaseModel):
    """The Ed25519 signature of a card, and what it covers (`responder tabletop verify` checks it)."""

    key_id: str = Field(description="the run's signing key: the first 16 hex digits of its public key's SHA-256")
    sig: str = Field(description="base64 Ed25519 signature")
    covers: str = Field(default="the card's canonical JSON (sorted keys, no whitespace, UTF-8, an integral number "
                        "within ±2^53 as an integer) without "
                        f"{' and '.join(f'`{k}`' for k in SIGNED_WITHOUT)}")


class Card(BaseModel):
    """The scorecard of one scenario."""

    playbook: str
    title: str
    path: str
    status: Status
    score: float
    grades: list[Grade]
    figures: Figures
    error: str | None = None
    timeline: str
    improvements: list[str] = Field(default_factory=list)
    incidents: list[dict[str, Any]] = Field(default_factory=list, description="per-incident timeline for the SVG")
    deliveries: list[dict[str, Any]] = Field(default_factory=list, description="each record delivered: inject, "
                                             "virtual time, transport (kafka/webhook), auth, HTTP status, produced")
    defaulted: list[str] = Field(default_factory=list, description="runbooks without on_failure that the drill's "
                                 "service gave the default_on_failure steps (as production would), run or not")
    failures: list[StepFailure] = Field(default_factory=list, description="each failed, refused or timed-out step "
                                        "and who heard of it (responder/tabletop/failures.py)")
    signature: CardSignature | None = Field(default=None, description="set once the card is signed (scorecard.py)")


def offset(entry: TimelineEntry, start: float) -> float:
    """Virtual seconds between the run's start and an entry."""
    return round(datetime.fromisoformat(entry.at).timestamp() - start, 3)


def cite(entry: TimelineEntry, start: float) -> str:
    """An entry as evidence: seq, virtual time, kind and the fields that matter."""
    b = entry.body
    keys = ("runbook", "step", "actuator", "target", "status", "guard", "reason", "decision", "by", "error")
    detail = " ".join(f"{k}={b[k]}" for k in keys if b.get(k) not in (None, ""))
    return f"#{entry.seq} t+{offset(entry, start):g}s {entry.kind} {detail}".strip()


def _params(run: Run) -> dict[str, dict[str, Any]]:
    """Step parameters by step key (from intents) and by (incident, step, target) (from approval requests)."""
    out: dict[str, dict[str, Any]] = {}
    for e in run.entries:
        params = e.body.get("params")
        if not isinstance(params, dict):
            continue
        if e.kind == EntryKind.STEP_INTENT and "key" in e.body:
            out[str(e.body["key"])] = params
        elif e.kind == EntryKind.APPROVAL_REQUESTED:
            out[f"{e.incident}/{e.body.get('step')}/{e.body.get('target')}"] = params
    return out


def same_step(wanted: str | None, got: object) -> bool:
    """Whether a recorded step id is the one named: equal, or an escalation `<wanted>.<failed step>` of the
    `on_failure` step `wanted` (runbook step ids have no dots)."""
    return wanted is None or got == wanted or str(got).startswith(f"{wanted}.")


def _step_matches(exp: Expectation, e: TimelineEntry, params: dict[str, dict[str, Any]], run: Run) -> bool:
    b = e.body
    if (exp.actuator and b.get("actuator") != exp.actuator) or not same_step(exp.step, b.get("step")):
        return False
    if exp.runbook and not any(m.incident == e.incident and str(m.body.get("runbook", "")).startswith(f"{exp.runbook}@")
                               for m in run.entries if m.kind == EntryKind.INCIDENT_OPENED):
        return False
    got = params.get(str(b.get("key"))) or params.get(f"{e.incident}/{b.get('step')}/{b.get('target')}", {})
    wanted = {k: run.bindings.id_of(v) if isinstance(v, str) else v for k, v in exp.params.items()}
    return all(got.get(k) == v for k, v in wanted.items())


def _window(exp: Expectation, run: Run) -> tuple[float, float]:
    start = run.inject_at.get(exp.after or run.playbook.injects[0].id, 0.0)
    return start, start + exp.within if exp.within is not None else float("inf")


def _count_ok(exp: Expectation, n: int) -> bool:
    return n == exp.count if exp.count is not None else n >= 1


async def grade(exp: Expectation, run: Run, checker: Checker) -> Grade:
    """Grade one expectation against the run."""
    lo, hi = _window(exp, run)
    g = Grade(id=exp.id, kind=exp.kind.value, status="FAIL", weight=exp.weight, must_pass=exp.must_pass)
    if exp.after in run.undelivered:
        g.instead = f"inject {exp.after!r} was never delivered: it waited for {run.undelivered[exp.after]!r}"
        return g
    if exp.kind == ExpectKind.STATE:
        if run.aws is None:
            g.instead = "the sandbox was not reachable"
            return g
        try:
            ok, seen = await check_state(run.aws, run.bindings, exp)
        except (ActuationError, KeyError) as exc:
            ok, seen = False, f"could not read the sandbox: {exc}"
        g.status, g.evidence, g.instead = ("PASS", [seen], "") if ok else ("FAIL", [], seen)
        return g
    if exp.kind == ExpectKind.TIMELINE_VERIFIES:
        try:
            v = verify_lines(run.timeline.read_bytes().splitlines(), checker)
            g.status, g.evidence = "PASS", [f"{v.entries} entries, {v.checkpoints} signed checkpoint(s), head "
                                            f"{v.head[:12]}"]
        except (ChainBroken, OSError) as exc:
            g.instead = str(exc)
        return g
    if exp.kind == ExpectKind.NO_DOUBLE_ACTION:
        acted = Counter(str(e.body.get("key")) for e in run.entries
                        if e.kind == EntryKind.STEP_RESULT and e.body.get("status") == "ok")
        twice = [k for k, n in acted.items() if n > 1]
        g.status = "FAIL" if twice else "PASS"
        g.evidence = [f"{len(acted)} step key(s) acted, each once"] if not twice else []
        g.instead = f"acted more than once: {twice}" if twice else ""
        return g
    if exp.kind == ExpectKind.DEAD_LETTERED:
        n = run.deadlettered.get(exp.reason, 0) if exp.reason else sum(run.deadlettered.values())
        g.status = "PASS" if _count_ok(exp, n) else "FAIL"
        g.evidence = [f"{n} record(s) dead-lettered with reason {exp.reason or 'any'}"]
        g.instead = "" if g.status == "PASS" else f"dead letters by reason: {run.deadlettered or 'none'}"
        return g
    return _grade_entries(exp, run, g, lo, hi)


def _grade_entries(exp: Expectation, run: Run, g: Grade, lo: float, hi: float) -> Grade:
    params = _params(run)
    kinds = {ExpectKind.RUNBOOK_MATCHED: EntryKind.EVENT_MATCHED, ExpectKind.APPROVAL_REQUESTED:
             EntryKind.APPROVAL_REQUESTED, ExpectKind.GUARD_TRIPPED: EntryKind.GUARD_TRIPPED}
    kind = kinds.get(exp.kind, EntryKind.STEP_RESULT)
    candidates = [e for e in run.entries if e.kind == kind]
    if exp.kind == ExpectKind.RUNBOOK_MATCHED:
        found = [e for e in candidates if str(e.body.get("runbook", "")).startswith(f"{exp.runbook}@")]
    elif exp.kind == ExpectKind.GUARD_TRIPPED:  # step, actuator, runbook and params hold as for a step result
        found = [e for e in candidates if (not exp.reason or exp.reason in str(e.body.get("guard", "")))
                 and _step_matches(exp, e, params, run)]
    else:
        found = [e for e in candidates if _step_matches(exp, e, params, run)]
    if exp.kind == ExpectKind.STEP_NOT_DONE:
        done = [e for e in found if e.body.get("status") == "ok"]
        g.status = "FAIL" if done else "PASS"
        g.evidence = [cite(e, run.start) for e in found] or ["no such step ran"]
        g.instead = "; ".join(cite(e, run.start) for e in done)
        return g
    if exp.kind == ExpectKind.STEP_DONE:
        status = exp.status or "ok"
        right = [e for e in found if e.body.get("status") == status]
    else:
        right = found
    timely = [e for e in right if lo <= offset(e, run.start) <= hi]
    g.evidence = [cite(e, run.start) for e in timely]
    if _count_ok(exp, len(timely)):
        g.status = "PASS"
    elif right or found:
        g.status = "PARTIAL"
        g.instead = "; ".join(cite(e, run.start) for e in (right or found)[:5])
        if right and not timely:
            g.instead = f"late or early (window t+{lo:g}s..t+{hi:g}s): {g.instead}"
    else:
        g.instead = _what_happened(run)
    return g


def _what_happened(run: Run) -> str:
    """A short account of what the service did instead, for a FAIL with no matching entry."""
    interesting = [e for e in run.entries if e.kind in (EntryKind.EVENT_MATCHED, EntryKind.STEP_RESULT,
                                                        EntryKind.GUARD_TRIPPED, EntryKind.APPROVAL_REQUESTED,
                                                        EntryKind.STEP_SKIPPED, EntryKind.APPROVAL_REJECTED)]
    dead = f"; dead-lettered {run.deadlettered}" if run.deadlettered else ""
    if not interesting:
        return f"no runbook matched any inject{dead}"
    return "; ".join(cite(e, run.start) for e in interesting[:6]) + dead
