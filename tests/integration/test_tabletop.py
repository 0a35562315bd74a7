"""`responder tabletop run`: the shipped playbooks through the real service on the embedded sandbox, graded."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from typer.testing import CliRunner

from responder.cli import app
from responder.models.timeline import EntryKind
from responder.timeline.chain import parse_lines
from responder.timeline.checkpoint import Checker
from responder.timeline.verify import verify_lines

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = ROOT / "playbooks"


def _run(*args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(app, ["tabletop", "run", "--runbooks", str(ROOT / "runbooks"), "--json", *args])
    assert result.stdout.strip(), (result.exit_code, result.output, repr(result.exception))  # what failed, if not JSON
    return result.exit_code, json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.timeout(240)
def test_shipped_playbooks_pass_and_reports_are_written(tmp_path):
    """Every shipped playbook runs; no must_pass fails; reports, JUnit and signed scorecards are produced."""
    code, out = _run(str(PLAYBOOKS), "--report", str(tmp_path / "report"), "--junit", str(tmp_path / "junit.xml"))
    cards = {c["playbook"]: c for c in out["cards"]}
    failed = {k: [g for g in c["grades"] if g["status"] != "PASS"] for k, c in cards.items() if c["status"] == "FAIL"}
    assert code == 0, failed
    assert set(cards) == {p.stem for p in PLAYBOOKS.glob("*.yaml")}
    assert cards["sustained-drift"]["figures"]["virtual_seconds"] >= 7200
    killed = cards["service-killed-mid-incident"]["figures"]
    assert killed["restarts"] == 1
    # a real SIGKILL of the service's own process (not a cancelled task), mid-call
    assert [(k["at"], k["signal"], k["returncode"], k["during"]) for k in killed["kills"]] == [
        (10.0, "SIGKILL", -9, ["UpdateAccessKey"])]
    assert os.getpid() not in {k["pid"] for k in killed["kills"]}
    assert cards["iam-throttled"]["figures"]["faults_injected"] == 2
    siem = [(d["inject"], d["transport"], d.get("auth"), d.get("http_status"), d["produced"])
            for d in cards["stolen-instance-credentials-siem"]["deliveries"]]
    assert siem == [("securityhub", "webhook", "bearer", 202, 1), ("splunk", "webhook", "url-token", 202, 1),
                    ("splunk", "webhook", "url-token", 202, 0)]  # the retry is acknowledged, not produced again
    leaked = cards["leaked-access-key"]
    retry = [d["at"] for d in leaked["deliveries"] if d["inject"] == "attacker-retries"]
    assert retry == [130.0]  # the finding at 10 s, `key-deactivated` met then, and the 2 min delay
    assert leaked["figures"]["wall_to_first_action"] is not None
    report = tmp_path / "report"
    assert "## Improvement list" in (report / "after-action.md").read_text()
    assert "<svg" in (report / "scorecard.html").read_text()
    assert json.loads((report / "scorecard.json").read_text())["key_id"] == out["key_id"]
    suites = ET.parse(tmp_path / "junit.xml").getroot()
    assert len(suites.findall("testsuite")) == len(cards)
    timeline = Path(cards["leaked-access-key"]["timeline"])
    entries = list(parse_lines(timeline.read_bytes().splitlines()))
    [scorecard] = [e for e in entries if e.kind == EntryKind.TABLETOP_SCORECARD]
    assert scorecard.body["status"] == "PASS"
    assert scorecard.body["key_id"] == out["key_id"]
    assert verify_lines(timeline.read_bytes().splitlines(), Checker.from_text(out["public_key"])).checkpoints >= 1


HANGS = """\
id: hangs
title: a scenario that cannot finish in its time
objectives: [o]
timeout: 0.5
world:
  users: [{name: u, keys: [k]}]
  instances: [{name: host}]
injects:
  - {id: i, event: events/guardduty-leaked-access-key.json}
expectations:
  - {id: e, kind: state, check: key_inactive, resource: k, must_pass: true}
"""

FAILS = """\
id: fails
title: a must-pass expectation that cannot hold
objectives: [o]
world:
  users: [{name: u, keys: [k]}]
injects:
  - {id: i, event: events/guardduty-leaked-access-key.json}
expectations:
  - {id: contained, kind: state, check: key_inactive, resource: k, must_pass: true}
"""


@pytest.mark.timeout(120)
def test_hung_and_failing_scenarios_fail_the_run(tmp_path):
    """A scenario past its deadline is stopped and failed; a failed must_pass exits 1 and says what happened."""
    shutil.copytree(PLAYBOOKS / "events", tmp_path / "events")
    (tmp_path / "hangs.yaml").write_text(HANGS)
    (tmp_path / "fails.yaml").write_text(FAILS)
    code, out = _run(str(tmp_path))
    assert code == 1
    cards = {c["playbook"]: c for c in out["cards"]}
    assert cards["hangs"]["status"] == "FAIL"
    assert "deadline" in cards["hangs"]["error"]
    [grade] = cards["fails"]["grades"]
    assert grade["status"] == "FAIL"
    assert grade["instead"] == "key k is Active"
