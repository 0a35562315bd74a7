"""`responder run --sandbox` acts in the sandbox's own account, never in a configured production one."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs
from typer.testing import CliRunner

import responder.actuators.aws  # registers the AWS actuators
import responder.sandbox
import responder.service
from responder import log
from responder.cli import app
from responder.demo import eventbridge
from responder.engine.arnforms import Home
from responder.normalise import decode_doc
from responder.sandbox import SANDBOX_ACCOUNT
from responder.settings import Settings
from tests.findings import guardduty_finding
from tests.guard_kit import step_trips
from tests.kit import KEY

PRODUCTION = "999999999999"


@dataclass
class _Endpoint:
    """What `run` reads of a started broker or AWS API."""

    bootstrap: str = "127.0.0.1:1"
    endpoint_url: str = "http://127.0.0.1:1"
    account: str = SANDBOX_ACCOUNT


@dataclass
class _Box:
    """A sandbox that starts nothing."""

    broker: _Endpoint = field(default_factory=_Endpoint)
    aws: _Endpoint = field(default_factory=_Endpoint)

    def start(self) -> _Box:
        return self

    def stop(self) -> None:
        pass


def _served(monkeypatch: pytest.MonkeyPatch, runbooks_dir: Path, *args: str) -> tuple[Settings, list[dict[str, Any]]]:
    """The settings `responder run ARGS` serves with (nothing started), and what it logged."""
    served: list[Settings] = []
    monkeypatch.setattr(responder.sandbox, "Sandbox", _Box)
    monkeypatch.setattr(log, "configure", lambda *_: None)
    monkeypatch.setattr(responder.service, "health_server", lambda settings: None)
    monkeypatch.setattr(responder.service, "rebuilds", lambda settings, **_: served.append(settings))

    async def serve(*_: Any, **__: Any) -> None:
        return None

    monkeypatch.setattr(responder.service, "serve_rejoining", serve)
    with capture_logs() as logs:
        result = CliRunner().invoke(app, ["run", *args, "--runbooks", str(runbooks_dir)])
    assert result.exit_code == 0, result.output
    [settings] = served
    return settings, logs


def test_run_sandbox_compares_against_the_sandbox_account(monkeypatch: pytest.MonkeyPatch, runbooks_dir: Path) -> None:
    """A configured `aws_account_id` is replaced by the sandbox's under --sandbox, logged once; the finding acts."""
    monkeypatch.setenv("RESPONDER_AWS_ACCOUNT_ID", PRODUCTION)
    settings, logs = _served(monkeypatch, runbooks_dir, "--sandbox")
    assert settings.aws_account_id == SANDBOX_ACCOUNT
    [line] = [e for e in logs if e["event"] == "sandbox_account_replaced"]
    assert (line["configured"], line["sandbox"]) == (PRODUCTION, SANDBOX_ACCOUNT)
    [event] = decode_doc(eventbridge(guardduty_finding(KEY, "ml-training")))
    assert event.account == SANDBOX_ACCOUNT
    given = {"user_name": "ml-training", "access_key_id": KEY}
    trips = step_trips([], "aws.iam.deactivate_access_key", given, event,
                       home=Home(account=settings.aws_account_id))
    assert [t.guard for t in trips if t.guard == "account"] == []


def test_run_without_sandbox_keeps_the_configured_account(monkeypatch: pytest.MonkeyPatch, runbooks_dir: Path) -> None:
    """Without --sandbox the configured `aws_account_id` is served as set; unset under --sandbox, nothing is logged."""
    monkeypatch.setenv("RESPONDER_AWS_ACCOUNT_ID", PRODUCTION)
    settings, logs = _served(monkeypatch, runbooks_dir)
    assert settings.aws_account_id == PRODUCTION
    monkeypatch.delenv("RESPONDER_AWS_ACCOUNT_ID")
    settings, logs = _served(monkeypatch, runbooks_dir, "--sandbox")
    assert settings.aws_account_id == SANDBOX_ACCOUNT
    assert [e for e in logs if e["event"] == "sandbox_account_replaced"] == []
