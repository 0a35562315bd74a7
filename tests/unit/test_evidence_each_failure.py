"""The evidence pack lists each failure of a step: one without its own intent, and its escalation."""

from __future__ import annotations

from pathlib import Path

from responder.tabletop.postmortem import postmortem
from responder.timeline.chain import parse_lines
from responder.timeline.evidence import evidence_pack, render_markdown
from tests.timeline_builders import incident_timeline

HEAD = {"step": "deactivate-key", "actuator": "aws.iam.deactivate_access_key", "target": "AKIAEXAMPLE", "key": "k1"}


def _pack(tmp_path: Path) -> dict:
    rec = incident_timeline(tmp_path / "t.jsonl")  # deactivate-key ran once (intent, ok)
    for n in (1, 2):  # then it is refused twice (a protected target: no intent), each escalated
        rec.append("step.result", {**HEAD, "status": "refused", "error": f"protected {n}", "permanent": True}, "inc-1")
        rec.append("step.escalated", {**HEAD, "status": "refused", "error": f"protected {n}",
                                      "escalation": ["page.deactivate-key"]}, "inc-1")
    rec.append("step.result", {"step": "isolate", "actuator": "aws.ec2.isolate_instance", "status": "failed",
                               "error": "invalid parameters: ${event.x} is not set", "permanent": True}, "inc-1")
    rec.close()
    entries = list(parse_lines((tmp_path / "t.jsonl").read_bytes().splitlines()))
    return evidence_pack(entries, "inc-1", {"ok": True})


def test_a_result_without_its_own_intent_is_an_attempt_of_its_own(tmp_path):
    """A refused run of a step that acted before keeps the earlier result and adds one attempt per refusal."""
    pack = _pack(tmp_path)
    [key_off, isolate] = pack["actions"]
    assert [(t.get("intent_seq") is not None, t["status"], t.get("error")) for t in key_off["attempts"]] == [
        (True, "ok", None), (False, "refused", "protected 1"), (False, "refused", "protected 2")]
    assert (isolate["step"], [t["status"] for t in isolate["attempts"]]) == ("isolate", ["failed"])


def test_each_escalation_of_a_failure_is_a_decision_with_its_error(tmp_path):
    """step.escalated is listed among the decisions, each with the error and the escalation steps."""
    pack = _pack(tmp_path)
    escalated = [d for d in pack["decisions"] if d["kind"] == "step.escalated"]
    assert [d["error"] for d in escalated] == ["protected 1", "protected 2"]
    md = render_markdown(pack)
    assert sum("step.escalated" in line and "protected 2" in line for line in md.splitlines()) == 1
    assert "invalid parameters" in md


def test_the_postmortem_draft_lists_a_refused_step_and_asks_about_its_target(tmp_path):
    """A step refused before acting (no intent) is one of the draft's actions, with the containment question."""
    rec = incident_timeline(tmp_path / "t.jsonl")
    rec.append("step.result", {**HEAD, "step": "revoke", "key": "k2", "status": "refused", "error": "protected"},
               "inc-1")
    rec.close()
    text = postmortem(parse_lines((tmp_path / "t.jsonl").read_bytes().splitlines()), "inc-1")
    assert "- `revoke` `aws.iam.deactivate_access_key` on `AKIAEXAMPLE`: **refused** (1 attempt(s))" in text
    assert "- Step `revoke` ended `refused`: was the target contained another way?" in text


def test_a_step_whose_parameters_did_not_resolve_shows_no_target(tmp_path):
    """A result with no target (parameters unresolved) reads `on –`, not a target named `None`."""
    md = render_markdown(_pack(tmp_path))
    assert "### isolate: `aws.ec2.isolate_instance` on – — failed" in md
    assert "`None`" not in md


def test_an_attempt_under_another_actuator_is_listed_as_that_actuators(tmp_path):
    """One step key intended by one actuator, then run by another (edited runbook): the pack names each, the last."""
    rec = incident_timeline(tmp_path / "t.jsonl")
    wipe = {**HEAD, "actuator": "aws.iam.delete_access_key", "key": "k2"}
    rec.append("step.intent", {**HEAD, "key": "k2", "params": {"access_key_id": "AKIAEXAMPLE"}}, "inc-1")
    rec.append("step.intent", {**wipe, "params": {"access_key_id": "AKIAEXAMPLE"}}, "inc-1")
    rec.append("step.result", {**wipe, "status": "ok", "changed": True, "verified": True}, "inc-1")
    rec.close()
    entries = list(parse_lines((tmp_path / "t.jsonl").read_bytes().splitlines()))
    pack = evidence_pack(entries, "inc-1", {"ok": True})
    [act] = [a for a in pack["actions"] if a["key"] == "k2"]
    assert act["actuator"] == "aws.iam.delete_access_key"
    tried = ["aws.iam.deactivate_access_key", "aws.iam.delete_access_key"]
    assert [a.get("actuator") for a in act["attempts"]] == tried
    assert ("Attempts by actuator, in order: `aws.iam.deactivate_access_key`, `aws.iam.delete_access_key`."
            in render_markdown(pack))
