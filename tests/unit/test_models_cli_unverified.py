"""`responder models rollback|switch` whose read-back cannot be made say why it is not verified, on the line and in
--json, as `timeline show` does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from responder.actuators import registry
from responder.actuators.model.local import LocalStore
from responder.cli.app import app
from responder.errors import PermanentActuationError, TransientActuationError


@pytest.fixture
def models(tmp_path: Path, registry: LocalStore) -> Path:
    """A local registry serving fraud v2 (v1 and v2 signed by a trusted key); the timeline's path."""
    return tmp_path / "t.jsonl"


def _unreadable(monkeypatch: pytest.MonkeyPatch, actuator: str, error: Exception) -> None:
    async def verify(*_: object) -> bool:
        raise error

    monkeypatch.setattr(registry.get(actuator), "verify", verify)


@pytest.mark.parametrize(("command", "actuator"), [
    (["models", "switch", "fraud", "v1"], "model.switch_version"),
    (["models", "rollback", "fraud"], "model.rollback_to_last_signed"),
])
def test_an_unverified_switch_or_rollback_names_the_read_back_error(models, monkeypatch, command, actuator):
    """An unverified model switch or rollback says not verified and names the read-back error."""
    _unreadable(monkeypatch, actuator, PermanentActuationError("denied", code="AccessDenied"))
    out = CliRunner().invoke(app, [*command, "--timeline", str(models)])
    assert out.exit_code == 0, out.output
    assert "verified=False verify_error=AccessDenied: denied" in out.output
    assert "not verified" in out.output
    assert "✓" not in out.output


def test_an_unverified_switch_in_json_carries_the_error(models, monkeypatch):
    """--json: the result's verify_error is in the document."""
    _unreadable(monkeypatch, "model.switch_version", TransientActuationError("Rate exceeded", code="Throttling"))
    out = CliRunner().invoke(app, ["models", "switch", "fraud", "v1", "--timeline", str(models), "--json"])
    assert out.exit_code == 0, out.output
    body = json.loads(out.stdout)
    assert (body["verified"], body["verify_error"]) == (False, "Throttling: Rate exceeded")


def test_a_verified_switch_prints_as_before(models):
    """A switch that reads back: ✓ and verified=True, nothing about a read-back error."""
    out = CliRunner().invoke(app, ["models", "switch", "fraud", "v1", "--timeline", str(models)])
    assert out.exit_code == 0, out.output
    assert "✓ model.switch_version model/fraud: changed=True verified=True" in out.output
    assert "verify_error" not in out.output
