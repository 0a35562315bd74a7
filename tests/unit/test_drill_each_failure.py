"""A drill's card lists each failure of a step and who heard of it; a repeated failure told nobody is flagged."""

from __future__ import annotations

import asyncio

from responder.tabletop.failures import AGAIN, NOBODY, TOLD, step_failures
from responder.tabletop.grading import Card, Figures
from responder.tabletop.report import markdown
from responder.tabletop.scorecard import improvements
from responder.tabletop.suite import SuiteResult
from responder.timeline.recorder import Recorder
from responder.timeline.store import MemoryStore

KEY = {"step": "deactivate-key", "actuator": "aws.iam.deactivate_access_key"}
PAGE = {"step": "page.deactivate-key", "actuator": "notify.kafka.publish_message"}


def _entries() -> list:
    rec = Recorder(MemoryStore())
    for n, page in enumerate(({"kind": "step.result", "status": "ok"}, {"kind": "step.skipped",
                                                                         "reason": "already_done"})):
        rec.append("step.result", {**KEY, "status": "failed", "error": f"no such key {n}"}, "inc-1")
        rec.append("step.escalated", {**KEY, "status": "failed", "error": f"no such key {n}",
                                      "escalation": ["page.deactivate-key"]}, "inc-1")
        rec.append(str(page["kind"]), {**PAGE, **{k: v for k, v in page.items() if k != "kind"}}, "inc-1")
    rec.append("step.result", {**KEY, "status": "refused", "error": "protected"}, "inc-2")
    rec.append("escalation.missed", {**KEY, "status": "refused", "reason": "no_on_failure"}, "inc-2")
    asyncio.run(rec.flush())
    return list(rec.entries())


def test_each_failure_says_whether_anyone_heard_of_it():
    """Told through the escalation, not told again (its page already done), or nobody (escalation.missed)."""
    failed = step_failures(_entries(), lambda e: float(e.seq))
    assert [(f.incident, f.status, f.told) for f in failed] == [
        ("inc-1", "failed", TOLD), ("inc-1", "failed", AGAIN), ("inc-2", "refused", NOBODY)]
    assert failed[1].already_done == ["page.deactivate-key"]
    assert failed[2].missed == "no_on_failure"


def test_the_report_and_improvements_show_the_failures_nobody_heard_of():
    """after-action.md lists every failure; the improvement list names the step whose later failures went untold."""
    failed = step_failures(_entries(), lambda e: float(e.seq))
    card = Card(playbook="repeat", title="t", path="p", status="PASS", score=1.0, grades=[], figures=Figures(),
                timeline="t.jsonl", failures=failed, improvements=improvements([], Figures(), None, None, failed))
    md = markdown(SuiteResult(cards=[card], key_id="k", public_key="p", wall_seconds=1.0), [])
    assert sum(line.startswith("- t+") and "deactivate-key" in line for line in md.splitlines()) == 3
    assert "not told again (page.deactivate-key)" in md
    assert "nobody told (escalation.missed: no\\_on\\_failure)" in md
    [review] = card.improvements
    assert "failed 3 time(s); nobody was told of 2" in review


def test_a_failure_whose_escalation_failed_is_not_reported_as_escalation_missed():
    """A page that itself failed (a drill's notify.webhook: NoSigningKey) is named, not an escalation.missed."""
    rec = Recorder(MemoryStore())
    rec.append("step.result", {**KEY, "status": "failed", "error": "no such key"}, "inc-1")
    rec.append("step.escalated", {**KEY, "status": "failed", "error": "no such key",
                                  "escalation": ["page.deactivate-key"]}, "inc-1")
    rec.append("step.result", {**PAGE, "status": "failed", "error": "NoSigningKey"}, "inc-1")
    asyncio.run(rec.flush())
    key_off, page = step_failures(list(rec.entries()), lambda e: float(e.seq))
    assert (key_off.told, key_off.escalation_failed, key_off.missed) == (NOBODY, ["page.deactivate-key"], None)
    assert "escalation.missed" not in key_off.line()
    assert "escalation failed: page.deactivate-key" in key_off.line()
    assert page.line().endswith("nobody told (an escalation step: never escalated)")
