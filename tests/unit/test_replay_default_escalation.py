"""`responder replay` escalates as the service would: through default_on_failure, or to nobody (shown)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from responder.cli import app
from tests.drill_kit import EVENT, PAGE, UNRESOLVED


def _replay(tmp_path: Path, *extra: str) -> tuple[int, str]:
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir(exist_ok=True)
    (runbooks / "silent-deactivation.yaml").write_text(UNRESOLVED)
    result = CliRunner().invoke(app, ["replay", str(EVENT), "--runbooks", str(runbooks), *extra])
    return result.exit_code, result.stdout


def test_replay_plans_the_defaults_escalation_for_a_step_that_would_fail(tmp_path, monkeypatch):
    """With default_on_failure set, a step that would fail shows the default's escalation step planned for it."""
    monkeypatch.setenv("RESPONDER_DEFAULT_ON_FAILURE", json.dumps(PAGE))
    code, out = _replay(tmp_path, "--json")
    result = json.loads(out)
    assert code == 0
    assert [(p["step"], p["actuator"]) for p in result["planned"]] == [
        ("page.deactivate-key", "notify.kafka.publish_message")]
    [failed] = result["failed"]
    assert (failed["step"], failed["escalation"], failed["missed"]) == ("deactivate-key", ["page.deactivate-key"], None)


def test_replay_shows_a_failure_nobody_would_hear_of(tmp_path, monkeypatch):
    """Without default_on_failure, the failing step is listed with escalation.missed (it was invisible)."""
    monkeypatch.delenv("RESPONDER_DEFAULT_ON_FAILURE", raising=False)
    code, out = _replay(tmp_path, "--json")
    result = json.loads(out)
    assert (code, result["planned"]) == (0, [])
    [failed] = result["failed"]
    assert (failed["step"], failed["record"], failed["missed"]) == ("deactivate-key", 0, "no_on_failure")
    code, text = _replay(tmp_path)
    assert "deactivate-key would fail" in text
    assert "nobody told (escalation.missed: no_on_failure)" in text


def test_replay_refuses_a_default_the_service_would_refuse(tmp_path, monkeypatch):
    """A default that stops `responder run` at start-up stops the replay with exit 3 naming the setting's field."""
    monkeypatch.setenv("RESPONDER_DEFAULT_ON_FAILURE", json.dumps([{"id": "page", "actuator": "aws.nope"}]))
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    (runbooks / "silent-deactivation.yaml").write_text(UNRESOLVED)
    result = CliRunner().invoke(app, ["replay", str(EVENT), "--runbooks", str(runbooks)])
    assert result.exit_code == 3
    assert "default_on_failure.0.actuator (for runbook silent-deactivation): unknown actuator 'aws.nope'" in \
        result.output
