"""`responder tabletop run`: a fault the service never hit fails the scenario; the report's cards verify as signed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from typer.testing import CliRunner

from responder.cli import app

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = ROOT / "playbooks" / "iam-throttled.yaml"


@pytest.mark.timeout(120)
def test_a_fault_that_never_fired_fails_the_run_and_the_signed_report_verifies(tmp_path):
    """A throttle on an IAM call never made is a must-pass FAIL (exit 1, JUnit); the scorecard.json cards verify."""
    shutil.copytree(ROOT / "playbooks" / "events", tmp_path / "events")
    text = PLAYBOOK.read_text().replace("operation: UpdateAccessKey", "operation: DeleteAccessKey")
    (tmp_path / "iam-throttled.yaml").write_text(text)
    report = tmp_path / "report"
    run = CliRunner().invoke(app, ["tabletop", "run", str(tmp_path), "--runbooks", str(ROOT / "runbooks"), "--json",
                                   "--report", str(report)])
    [card] = json.loads(run.stdout.strip().splitlines()[-1])["cards"]
    assert (run.exit_code, card["status"], card["figures"]["faults_injected"]) == (1, "FAIL", 0)
    assert [(g["id"], g["status"]) for g in card["grades"] if g["status"] != "PASS"] == [("faults.0", "FAIL")]
    [failed] = [c for c in ET.parse(report / "junit.xml").getroot().iter("testcase") if c.find("failure") is not None]
    assert failed.get("name") == "faults.0"
    verify = CliRunner().invoke(app, ["tabletop", "verify", str(report / "scorecard.json")])
    assert (verify.exit_code, verify.output.startswith("✓ iam-throttled: signed by")) == (0, True), verify.output


@pytest.mark.timeout(120)
def test_a_fault_only_the_runner_s_own_snapshot_would_hit_never_fires(tmp_path):
    """A throttle on ListUserPolicies (the runner's snapshot calls it, the service does not) fails `faults.0`."""
    shutil.copytree(ROOT / "playbooks" / "events", tmp_path / "events")
    text = (ROOT / "playbooks" / "leaked-access-key.yaml").read_text()
    fault = "faults:\n  - {service: iam, operation: ListUserPolicies, start: 0s, end: 10m}\ninjects:\n"
    (tmp_path / "leaked-access-key.yaml").write_text(text.replace("injects:\n", fault, 1))
    run = CliRunner().invoke(app, ["tabletop", "run", str(tmp_path), "--runbooks", str(ROOT / "runbooks"), "--json"])
    [card] = json.loads(run.stdout.strip().splitlines()[-1])["cards"]
    assert (run.exit_code, card["figures"]["faults_injected"]) == (1, 0), card["figures"]
    assert [g["id"] for g in card["grades"] if g["status"] != "PASS"] == ["faults.0"]
