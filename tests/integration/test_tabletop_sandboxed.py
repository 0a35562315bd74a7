"""A drill started from a production shell stays in its sandbox: production notify keys never sign a real POST."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from responder.cli import app
from responder.models.timeline import EntryKind
from responder.timeline.chain import parse_lines
from tests.drill_kit import drill
from tests.http import Receiver

pytestmark = pytest.mark.integration


@pytest.mark.timeout(120)
def test_a_drill_from_a_production_shell_posts_nothing_to_the_real_hook(tmp_path: Path, monkeypatch,
                                                                        receiver: Receiver):
    """The production default pages through notify.webhook: in the drill it fails NoSigningKey, nothing is POSTed."""
    page = [{"id": "page", "actuator": "notify.webhook.post_message",
             "with": {"url": receiver.url, "key_id": "oncall", "title": "${failure.step} failed"}}]
    monkeypatch.setenv("RESPONDER_DEFAULT_ON_FAILURE", json.dumps(page))
    monkeypatch.setenv("RESPONDER_NOTIFY_KEYS", json.dumps({"oncall": "production-secret"}))
    runbooks, playbook = drill(tmp_path)
    result = CliRunner().invoke(app, ["tabletop", "run", str(playbook), "--runbooks", str(runbooks), "--json",
                                      "--report", str(tmp_path / "report")])
    [card] = json.loads(result.stdout.strip().splitlines()[-1])["cards"]
    entries = list(parse_lines(Path(card["timeline"]).read_bytes().splitlines()))
    assert receiver.requests == []
    [paged] = [e.body for e in entries if e.kind == EntryKind.STEP_RESULT and e.body["step"] == "page.deactivate-key"]
    assert paged["status"] == "failed"
    assert "NoSigningKey" in json.dumps(paged)
