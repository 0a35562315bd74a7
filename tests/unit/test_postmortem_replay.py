"""`responder timeline postmortem` drafts from a real timeline; `responder replay` back-tests in dry-run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from responder.cli import app
from tests.timeline_builders import incident_timeline

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "runbooks" / "examples"


def test_postmortem_has_every_section(tmp_path):
    """The draft has the summary, timeline, actions with before/after, approvals, undo and open questions."""
    path = tmp_path / "t.jsonl"
    rec = incident_timeline(path)
    rec.append("approval.decided", {"step": "revoke", "decision": "deny", "by": "alice"}, "inc-1")
    rec.append("undo.result", {"undoes": "k1", "step": "deactivate-key", "status": "ok"}, "inc-1")
    rec.close()
    result = CliRunner().invoke(app, ["timeline", "postmortem", "inc-1", "--timeline", str(path)])
    assert result.exit_code == 0, result.output
    text = result.stdout
    for heading in ("## Summary", "## Detection-to-containment timeline", "## Actions", "## Approvals and deciders",
                    "## Undone", "## Open questions"):
        assert heading in text
    assert "- before: `{'status': 'Active'}`" in text
    assert "- after: `{'status': 'Inactive'}`" in text
    assert "decision=deny, by=alice" in text
    assert "undo.result" in text
    assert "ev-2" not in text  # another incident's event is not part of this one


def test_postmortem_asks_about_a_request_only_while_it_is_the_last_word(tmp_path):
    """A withdrawn request (its quota could be counted again) is no open question; one asked again after it is."""
    path = tmp_path / "t.jsonl"
    rec = incident_timeline(path)
    for step in ("taken-up", "asked-again"):
        rec.append("approval.requested", {"step": step, "reasons": ["quota_uncounted: ..."]}, "inc-1")
        rec.append("approval.withdrawn", {"step": step, "reason": "every quota ... can be counted now"}, "inc-1")
    rec.append("approval.requested", {"step": "asked-again", "reasons": ["quota: full"]}, "inc-1")
    rec.close()
    result = CliRunner().invoke(app, ["timeline", "postmortem", "inc-1", "--timeline", str(path)])
    assert result.exit_code == 0, result.output
    assert "Step `asked-again` waited for approval and nobody decided" in result.stdout
    assert "Step `taken-up` waited" not in result.stdout
    assert "approval.withdrawn" in result.stdout


def _records(path: Path, names: list[str]) -> None:
    path.write_text("".join(json.dumps(json.loads((EXAMPLES / f"{n}.json").read_text())) + "\n" for n in names))


def test_replay_prints_incidents_and_steps(tmp_path):
    """Recorded records open the incidents and plan the steps the runbooks would run, nothing is called."""
    events = tmp_path / "events.jsonl"
    _records(events, ["training-data-bucket-public", "compromised-inference-host"])
    result = CliRunner().invoke(app, ["replay", str(events), "--runbooks", str(ROOT / "runbooks"), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert [i["runbook"] for i in out["incidents"]] == ["training-data-bucket-public@1", "compromised-inference-host@1"]
    assert [(p["record"], p["actuator"]) for p in out["planned"]] == [
        (0, "aws.s3.block_public_access"), (0, "notify.kafka.publish_message"),
        (1, "aws.ec2.isolate_instance"), (1, "aws.ec2.snapshot_volumes"),
        (1, "notify.kafka.publish_message")]  # planned on snapshot_volumes' declared outputs (dry run)


def test_replay_against_a_baseline_shows_new_removed_changed(tmp_path):
    """A runbook change is reviewed against recorded alerts: removed, new and changed actions are listed."""
    events = tmp_path / "events.jsonl"
    _records(events, ["training-data-bucket-public", "compromised-inference-host"])
    new = tmp_path / "new"
    shutil.copytree(ROOT / "runbooks", new, ignore=shutil.ignore_patterns("examples"))
    (new / "training-data-bucket-public.yaml").unlink()
    rb = new / "compromised-inference-host.yaml"
    text = rb.read_text().replace("snapshot-volumes", "snapshot-disks")
    rb.write_text(text.replace("actuator: aws.ec2.isolate_instance", "actuator: aws.ec2.stop_instance"))
    result = CliRunner().invoke(app, ["replay", str(events), "--runbooks", str(new),
                                      "--baseline-runbooks", str(ROOT / "runbooks"), "--json"])
    assert result.exit_code == 0, result.output
    diff = json.loads(result.stdout.strip().splitlines()[-1])["difference"]
    assert sorted(a["step"] for a in diff["removed"]) == ["block-public-access", "notify-owners", "snapshot-volumes"]
    assert [a["step"] for a in diff["new"]] == ["snapshot-disks"]
    assert [(c["was"]["actuator"], c["action"]["actuator"]) for c in diff["changed"]] == [
        ("aws.ec2.isolate_instance", "aws.ec2.stop_instance")]


def test_replay_difference_shows_an_approval_gate_removed():
    """A runbook change that drops the human approval of an action (same actuator and params) is a changed action."""
    from responder.tabletop.replay import Backtest, Planned, difference

    step = {"record": 0, "event_id": "ev-1", "runbook": "rb@2", "incident": "inc-1", "step": "isolate",
            "actuator": "aws.ec2.isolate_instance", "target": "i-1", "params": {"instance_id": "i-1"}}
    gated = Planned.model_validate({**step, "would_require_approval": ["runbook approval"]})
    ungated = Planned.model_validate({**step, "would_require_approval": []})
    new = Backtest(records=1, incidents=[], planned=[ungated], rejected={})
    base = Backtest(records=1, incidents=[], planned=[gated], rejected={})
    changed = difference(new, base)["changed"]
    assert [(c["was"]["would_require_approval"], c["action"]["would_require_approval"]) for c in changed] == [
        (["runbook approval"], [])]


def test_replay_difference_ignores_what_a_gate_counts():
    """The same quota gate counting 3 runs in the baseline and 4 now is no change; a dropped gate is one."""
    from responder.tabletop.replay import Backtest, Planned, difference

    step = {"record": 0, "event_id": "ev-1", "runbook": "rb@2", "incident": "inc-1", "step": "isolate",
            "actuator": "aws.ec2.isolate_instance", "target": "i-1", "params": {"instance_id": "i-1"}}

    def planned(*reasons: str) -> Backtest:
        p = Planned.model_validate({**step, "would_require_approval": list(reasons)})
        return Backtest(records=1, incidents=[], planned=[p], rejected={})

    quota = "quota: runbook rb: aws.ec2.isolate_instance ran {} time(s) in 3600s (max 3)"
    assert difference(planned(quota.format(4)), planned(quota.format(3)))["changed"] == []
    assert len(difference(planned(), planned(quota.format(3)))["changed"]) == 1


def test_replay_prints_an_added_gate_as_text(tmp_path):
    """`replay --baseline-runbooks` prints a step that now needs approval with the reasons, not a Python list."""
    events = tmp_path / "events.jsonl"
    _records(events, ["compromised-inference-host"])
    new = tmp_path / "new"
    shutil.copytree(ROOT / "runbooks", new, ignore=shutil.ignore_patterns("examples"))
    rb = new / "compromised-inference-host.yaml"
    rb.write_text(rb.read_text().replace("    actuator: aws.ec2.isolate_instance\n",
                                         "    actuator: aws.ec2.isolate_instance\n    approval: {required: true}\n"))
    result = CliRunner().invoke(app, ["replay", str(events), "--runbooks", str(new),
                                      "--baseline-runbooks", str(ROOT / "runbooks")])
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())  # the console wraps long lines
    assert "isolate-host aws.ec2.isolate_instance on " in out
    assert "(approval: none → approval required by the runbook)" in out


def test_replay_credits_each_planned_step_to_the_record_that_planned_it(tmp_path):
    """Two records of one incident: the first record's steps are credited to it, not to the record that joined."""
    first = json.loads((EXAMPLES / "iam-credential-compromise.json").read_text())
    second = {**first, "id": "replay0second0event0id0000000000000"}
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(first) + "\n" + json.dumps(second) + "\n")
    result = CliRunner().invoke(app, ["replay", str(events), "--runbooks", str(ROOT / "runbooks"), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(out["incidents"]) == 1
    credited = {(p["record"], p["event_id"]) for p in out["planned"] if p["step"] == "deactivate-key"}
    assert credited == {(0, first["id"]), (1, second["id"])}
