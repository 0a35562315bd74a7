"""`responder replay` reads the settings as `runbooks validate` and `responder run` do: an invalid `RESPONDER_*`
setting is the same one line and exit 3 in both, and an empty `default_on_failure` is how to preview without it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from responder.cli import app
from tests.drill_kit import EVENT, UNRESOLVED


def _runbooks(tmp_path: Path) -> Path:
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir(exist_ok=True)
    (runbooks / "silent-deactivation.yaml").write_text(UNRESOLVED)
    return runbooks


@pytest.mark.parametrize(("variable", "value"), [("RESPONDER_DEFAULT_ON_FAILURE", "none"),
                                                 ("RESPONDER_DRY_RUN", "maybe"),
                                                 ("RESPONDER_VERIFY_SETTLE_S", "-1")])
def test_an_invalid_setting_stops_replay_and_validate_alike(tmp_path, monkeypatch, variable, value):
    """Both print the one line that names the variable and exit 3: neither runs on settings `run` would refuse."""
    monkeypatch.setenv(variable, value)
    runbooks = _runbooks(tmp_path)
    replay = CliRunner().invoke(app, ["replay", str(EVENT), "--runbooks", str(runbooks)])
    validate = CliRunner().invoke(app, ["runbooks", "validate", str(runbooks)])
    assert (replay.exit_code, validate.exit_code) == (3, 3), replay.output + validate.output
    [line] = replay.stderr.strip().splitlines()
    assert line.startswith(f"✗ {variable}=")
    assert validate.stderr.strip().splitlines() == [line]
    assert "Traceback" not in replay.output + validate.output


def test_an_empty_default_on_failure_previews_without_it_in_replay_and_validate(tmp_path, monkeypatch):
    """`RESPONDER_DEFAULT_ON_FAILURE='[]'` shows failures as told to nobody in replay; validate marks none by it."""
    monkeypatch.setenv("RESPONDER_DEFAULT_ON_FAILURE", "[]")
    runbooks = _runbooks(tmp_path)
    replay = CliRunner().invoke(app, ["replay", str(EVENT), "--runbooks", str(runbooks), "--json"])
    validate = CliRunner().invoke(app, ["runbooks", "validate", str(runbooks), "--json"])
    assert (replay.exit_code, validate.exit_code) == (0, 0), replay.output + validate.output
    assert [f["missed"] for f in json.loads(replay.stdout)["failed"]] == ["no_on_failure"]
    assert json.loads(validate.stdout)["defaulted"] == []
