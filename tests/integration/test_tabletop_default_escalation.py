"""A drill of a runbook without on_failure escalates as production would: through default_on_failure, or missed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from responder.cli import app
from responder.models.timeline import EntryKind
from responder.timeline.chain import parse_lines
from tests.drill_kit import PAGE, drill

pytestmark = pytest.mark.integration


def _drill(tmp_path: Path, extra: str = "") -> tuple[int, dict, list]:
    runbooks, playbook = drill(tmp_path, extra)
    result = CliRunner().invoke(app, ["tabletop", "run", str(playbook), "--runbooks", str(runbooks), "--json",
                                      "--report", str(tmp_path / "report")])
    out = json.loads(result.stdout.strip().splitlines()[-1])
    [card] = out["cards"]
    return result.exit_code, card, list(parse_lines(Path(card["timeline"]).read_bytes().splitlines()))


@pytest.mark.timeout(120)
def test_a_drill_pages_through_the_default_when_it_is_set(tmp_path, monkeypatch):
    """With RESPONDER_DEFAULT_ON_FAILURE set, the failed deactivation is escalated by the default's step."""
    monkeypatch.setenv("RESPONDER_DEFAULT_ON_FAILURE", json.dumps(PAGE))
    code, card, entries = _drill(tmp_path)
    assert (code, card["status"]) == (0, "PASS"), card["grades"]
    [escalated] = [e.body for e in entries if e.kind == EntryKind.STEP_ESCALATED]
    assert escalated["escalation"] == ["page.deactivate-key"]
    assert [e for e in entries if e.kind == EntryKind.ESCALATION_MISSED] == []
    assert card["defaulted"] == ["silent-deactivation"]
    assert [(f["step"], f["told_by"]) for f in card["failures"]] == [("deactivate-key", ["page.deactivate-key"])]
    assert "`silent-deactivation`" in (tmp_path / "report" / "after-action.md").read_text()


@pytest.mark.timeout(120)
def test_a_playbook_drills_without_the_default_when_it_says_none(tmp_path, monkeypatch):
    """`settings.default_on_failure: none` drills "nobody configured" even with the setting: escalation.missed."""
    monkeypatch.setenv("RESPONDER_DEFAULT_ON_FAILURE", json.dumps(PAGE))
    code, card, entries = _drill(tmp_path, "settings:\n  default_on_failure: none\n")
    assert (code, card["status"], card["defaulted"]) == (1, "FAIL", [])
    [missed] = [e.body for e in entries if e.kind == EntryKind.ESCALATION_MISSED]
    assert (missed["step"], missed["reason"]) == ("deactivate-key", "no_on_failure")
    assert [e for e in entries if e.kind == EntryKind.STEP_ESCALATED] == []
    assert [(f["step"], f["missed"]) for f in card["failures"]] == [("deactivate-key", "no_on_failure")]


@pytest.mark.timeout(120)
def test_a_drill_records_escalation_missed_without_the_default(tmp_path, monkeypatch):
    """Without default_on_failure, the drill shows what production would do: escalation.missed, nobody paged."""
    monkeypatch.delenv("RESPONDER_DEFAULT_ON_FAILURE", raising=False)
    code, card, entries = _drill(tmp_path)
    assert (code, card["status"]) == (1, "FAIL")
    [missed] = [e.body for e in entries if e.kind == EntryKind.ESCALATION_MISSED]
    assert (missed["step"], missed["reason"]) == ("deactivate-key", "no_on_failure")


@pytest.mark.timeout(120)
def test_a_drill_names_a_default_page_that_failed_not_a_missed_escalation(tmp_path, monkeypatch):
    """A default notify.webhook page fails NoSigningKey in a drill: the card names it, not an escalation.missed."""
    webhook = [{"id": "page", "actuator": "notify.webhook.post_message",
                "with": {"url": "https://hooks.example.com/security", "key_id": "oncall",
                         "title": "${failure.step} failed"}}]
    monkeypatch.setenv("RESPONDER_DEFAULT_ON_FAILURE", json.dumps(webhook))
    _, card, entries = _drill(tmp_path)
    assert [e for e in entries if e.kind == EntryKind.ESCALATION_MISSED] == []
    key_off, page = card["failures"]
    assert (key_off["step"], key_off["escalation_failed"], key_off["missed"]) == (
        "deactivate-key", ["page.deactivate-key"], None)
    assert (page["step"], page["status"]) == ("page.deactivate-key", "failed")
    assert "no signing key" in page["error"]
    after = (tmp_path / "report" / "after-action.md").read_text()
    assert "nobody told (escalation failed: page.deactivate-key)" in after
    assert "escalation.missed" not in after
