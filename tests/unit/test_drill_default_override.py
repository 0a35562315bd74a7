"""A drill says which runbooks the service's default_on_failure escalates for; a playbook may drill without it."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from responder.actuators.registry import registry
from responder.catalog import load_runbooks
from responder.cli import app
from responder.sandbox import Sandbox
from responder.tabletop.grading import Card, Figures
from responder.tabletop.models import Playbook
from responder.tabletop.report import markdown
from responder.tabletop.runner import Scenario
from responder.tabletop.suite import SuiteResult
from tests.drill_kit import NAMING_THE_DEFAULT, PAGE, drill

NOBODY = "settings:\n  default_on_failure: none\n"


def _scenario(tmp_path: Path, extra: str = "") -> Scenario:
    runbooks, playbook = drill(tmp_path, extra)
    pb = Playbook.model_validate(yaml.safe_load(playbook.read_text()))
    return Scenario(pb, playbook, Sandbox(), load_runbooks(runbooks, registry), runbooks, tmp_path, "",
                    default_on_failure=PAGE)


def test_a_scenario_names_the_runbooks_the_default_escalates_for(tmp_path):
    """The drill's run (and so its card) lists each runbook without on_failure that the default completes."""
    scenario = _scenario(tmp_path)
    assert scenario.run_state.defaulted == ["silent-deactivation"]
    assert [rb.on_failure[0].id for rb in scenario.runbooks] == ["page"]


def test_the_after_action_report_names_the_runbooks_the_default_escalates_for():
    """after-action.md says which runbooks escalated through the service's default_on_failure."""
    card = Card(playbook="silent", title="t", path="p", status="PASS", score=1.0, grades=[], figures=Figures(),
                timeline="t.jsonl", defaulted=["silent-deactivation"])
    md = markdown(SuiteResult(cards=[card], key_id="k", public_key="p", wall_seconds=1.0), [])
    assert "`default_on_failure` (runbooks without `on_failure`): `silent-deactivation`." in md


def test_a_playbook_can_drill_without_the_default(tmp_path):
    """`settings.default_on_failure: none`: the drill's service gets no default, and no runbook is completed."""
    scenario = _scenario(tmp_path, NOBODY)
    assert scenario.settings().default_on_failure == []
    assert scenario.run_state.defaulted == []
    assert [rb.on_failure for rb in scenario.runbooks] == [[]]


def test_a_wrong_default_on_failure_in_a_playbook_is_refused_with_its_line_and_the_choices(tmp_path):
    """A value other than service or none is a load error at its file:line naming both choices."""
    runbooks, playbook = drill(tmp_path, "settings:\n  default_on_failure: nobody\n")
    result = CliRunner().invoke(app, ["tabletop", "validate", str(playbook), "--runbooks", str(runbooks), "--json"])
    assert result.exit_code == 3
    [error] = json.loads(result.stdout)["errors"]
    assert error["line"] == playbook.read_text().splitlines().index("  default_on_failure: nobody") + 1
    assert "settings.default_on_failure" in error["reason"]
    assert "'service' or 'none'" in error["reason"]


def test_a_playbook_without_the_default_cannot_grade_the_defaults_steps(tmp_path, monkeypatch):
    """With `default_on_failure: none`, the default's escalation step is no step the drill could see (refused)."""
    runbooks, playbook = drill(tmp_path, NAMING_THE_DEFAULT + NOBODY)
    monkeypatch.setenv("RESPONDER_DEFAULT_ON_FAILURE", json.dumps(PAGE))
    result = CliRunner().invoke(app, ["tabletop", "validate", str(playbook), "--runbooks", str(runbooks), "--json"])
    assert result.exit_code == 3
    assert ["page.deactivate-key" in e["reason"] for e in json.loads(result.stdout)["errors"]] == [True]


def test_runbooks_validate_lists_the_runbooks_the_default_escalates_for(tmp_path, monkeypatch):
    """`runbooks validate` says which runbooks the default fills in (JSON `defaulted`, and on the console)."""
    runbooks, _ = drill(tmp_path)
    monkeypatch.setenv("RESPONDER_DEFAULT_ON_FAILURE", json.dumps(PAGE))
    result = CliRunner().invoke(app, ["runbooks", "validate", str(runbooks), "--json"])
    assert [ref.split("@")[0] for ref in json.loads(result.stdout)["defaulted"]] == ["silent-deactivation"]
    console = CliRunner().invoke(app, ["runbooks", "validate", str(runbooks)])
    assert "on_failure: default_on_failure (page)" in console.stdout
    monkeypatch.delenv("RESPONDER_DEFAULT_ON_FAILURE")
    assert json.loads(CliRunner().invoke(app, ["runbooks", "validate", str(runbooks), "--json"]).stdout)[
        "defaulted"] == []
