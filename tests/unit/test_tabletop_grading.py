"""Tabletop grading: which timeline entries satisfy an expectation, and which must not."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import yaml

from responder.models.timeline import EntryKind, TimelineEntry
from responder.tabletop.expectations import Expectation
from responder.tabletop.grading import grade
from responder.tabletop.models import Playbook
from responder.tabletop.outcome import Run

ROOT = Path(__file__).resolve().parents[2]
START = 1_800_000_000.0
AT = "2027-01-15T08:00:05+00:00"  # START + 5 s


def _entry(seq: int, kind: str, body: dict[str, Any], incident: str = "inc-a") -> TimelineEntry:
    return TimelineEntry(seq=seq, writer="w", at=AT, kind=kind, incident=incident, body=body, prev="0", hash="0")


def _run(pb: Playbook, entries: list[TimelineEntry]) -> Run:
    run = Run(pb, Path("pb.yaml"), Path("t.jsonl"), start=START, entries=entries)
    run.inject_at = {pb.injects[0].id: 0.0}
    return run


def _grade(exp: Expectation, run: Run) -> str:
    return asyncio.run(grade(exp, run, None)).status  # type: ignore[arg-type]  # no timeline_verifies here


def _playbook(**extra: Any) -> Playbook:
    doc: dict[str, Any] = {"id": "pb", "title": "t", "objectives": ["o"],
                           "injects": [{"id": "finding", "event": "e.json"}],
                           "expectations": [{"id": "x", "kind": "timeline_verifies"}], **extra}
    return Playbook.model_validate(doc)


def test_shipped_no_escalation_expectation_fails_when_an_escalation_ran():
    """tampered-serving-model's `no-escalation-needed` FAILs when an escalation (`escalate-oncall.<step>`) acted."""
    pb = Playbook.model_validate(yaml.safe_load((ROOT / "playbooks" / "tampered-serving-model.yaml").read_text()))
    exp = next(e for e in pb.expectations if e.id == "no-escalation-needed")
    escalated = _entry(7, EntryKind.STEP_RESULT, {"step": "escalate-oncall.roll-back", "key": "k1", "status": "ok",
                                                  "actuator": "notify.kafka.publish_message", "target": "t"})
    assert _grade(exp, _run(pb, [escalated])) == "FAIL"


def test_approval_and_guard_expectations_hold_to_their_runbook_and_params():
    """`approval_requested` / `guard_tripped` naming `runbook` or `params` are not met by another runbook or target."""
    pb = _playbook(world={"users": [{"name": "alice", "keys": ["main", "spare"]}]})
    opened = _entry(1, EntryKind.INCIDENT_OPENED, {"runbook": "iam-backdoor-key@1"}, incident="inc-b")
    parked = _entry(2, EntryKind.APPROVAL_REQUESTED, {"step": "deactivate-key", "actuator": "aws.iam.deactivate_key",
                                                      "target": "AKIASPARE", "params": {"access_key_id": "AKIASPARE"}},
                    incident="inc-b")
    tripped = _entry(3, EntryKind.GUARD_TRIPPED, {"step": "deactivate-key", "actuator": "aws.iam.deactivate_key",
                                                  "target": "AKIASPARE", "guard": "quota"}, incident="inc-b")
    run = _run(pb, [opened, parked, tripped])
    other_runbook = {"runbook": "access-key-compromise", "step": "deactivate-key"}
    assert _grade(Expectation(id="a", kind="approval_requested", **other_runbook), run) == "FAIL"  # type: ignore[arg-type]
    assert _grade(Expectation(id="g", kind="guard_tripped", reason="quota", **other_runbook), run) == "FAIL"  # type: ignore[arg-type]
    wrong_key = Expectation(id="p", kind="approval_requested", step="deactivate-key",  # type: ignore[arg-type]
                            params={"access_key_id": "AKIAMAIN"})
    assert _grade(wrong_key, run) == "FAIL"
    same = Expectation(id="s", kind="approval_requested", runbook="iam-backdoor-key",  # type: ignore[arg-type]
                       params={"access_key_id": "AKIASPARE"})
    assert _grade(same, run) == "PASS"
