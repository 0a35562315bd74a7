"""Drills and `runbooks validate` use the service's `default_on_failure`, as `responder run` does."""

from __future__ import annotations

import json

import yaml
from typer.testing import CliRunner

from responder.cli import app
from responder.sandbox import Sandbox
from responder.tabletop.models import Playbook
from responder.tabletop.runner import Scenario
from tests.drill_kit import NAMING_THE_DEFAULT, PAGE, drill


def test_validate_does_not_warn_of_a_runbook_the_default_escalates_for(tmp_path, monkeypatch):
    """With default_on_failure set, a runbook without on_failure is no `no on_failure escalation` warning."""
    runbooks, _ = drill(tmp_path)
    warned = json.loads(CliRunner().invoke(app, ["runbooks", "validate", str(runbooks), "--json"]).stdout)
    assert ["no on_failure escalation" in w["reason"] for w in warned["warnings"]] == [True]
    monkeypatch.setenv("RESPONDER_DEFAULT_ON_FAILURE", json.dumps(PAGE))
    result = CliRunner().invoke(app, ["runbooks", "validate", str(runbooks), "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["warnings"] == []


def test_validate_refuses_a_default_the_service_would_refuse(tmp_path, monkeypatch):
    """A default that stops `responder run` at start-up is a validate error (exit 3) naming the setting's field."""
    runbooks, _ = drill(tmp_path)
    monkeypatch.setenv("RESPONDER_DEFAULT_ON_FAILURE", json.dumps([{"id": "page", "actuator": "aws.nope"}]))
    result = CliRunner().invoke(app, ["runbooks", "validate", str(runbooks), "--json"])
    assert result.exit_code == 3
    [error] = json.loads(result.stdout)["errors"]
    assert "default_on_failure.0.actuator (for runbook silent-deactivation)" in error["reason"]


def test_tabletop_validate_knows_the_defaults_escalation_steps(tmp_path, monkeypatch):
    """A playbook may name the default's escalation step of a runbook without on_failure once the default is set."""
    runbooks, playbook = drill(tmp_path, NAMING_THE_DEFAULT)
    refused = CliRunner().invoke(app, ["tabletop", "validate", str(playbook), "--runbooks", str(runbooks), "--json"])
    assert refused.exit_code == 3
    assert ["page.deactivate-key" in e["reason"] for e in json.loads(refused.stdout)["errors"]] == [True]
    monkeypatch.setenv("RESPONDER_DEFAULT_ON_FAILURE", json.dumps(PAGE))
    result = CliRunner().invoke(app, ["tabletop", "validate", str(playbook), "--runbooks", str(runbooks), "--json"])
    assert result.exit_code == 0, result.stdout


def test_tabletop_run_refuses_a_bad_default_before_the_drill(tmp_path, monkeypatch):
    """A default the service would refuse stops `tabletop run` with exit 3 before any sandbox starts."""
    runbooks, playbook = drill(tmp_path)
    monkeypatch.setenv("RESPONDER_DEFAULT_ON_FAILURE", json.dumps([{"id": "page", "actuator": "aws.nope"}]))
    result = CliRunner().invoke(app, ["tabletop", "run", str(playbook), "--runbooks", str(runbooks), "--json"])
    assert result.exit_code == 3
    assert "default_on_failure.0.actuator" in result.stdout


def test_a_scenarios_service_gets_the_default_it_was_given(tmp_path, monkeypatch):
    """The drill's service settings carry the default it was handed, not whatever the environment says."""
    runbooks, playbook = drill(tmp_path)
    monkeypatch.setenv("RESPONDER_DEFAULT_ON_FAILURE", "[]")
    pb = Playbook.model_validate(yaml.safe_load(playbook.read_text()))
    scenario = Scenario(pb, playbook, Sandbox(), [], runbooks, tmp_path, "", default_on_failure=PAGE)
    assert scenario.settings().default_on_failure == PAGE
