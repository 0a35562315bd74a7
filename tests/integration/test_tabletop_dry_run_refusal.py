"""A dry-run drill of an attacker's target that is protected shows who production's refusal would page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from responder.cli import app
from responder.models.timeline import EntryKind
from responder.timeline.chain import parse_lines
from tests.drill_kit import EVENT, PLAYBOOK, RUNBOOK
from tests.kit import PAGE_ON_FAILURE

pytestmark = pytest.mark.integration

GUARDED = RUNBOOK.replace("steps:\n", "guards: {protected: {ids: [AKIAFAKE*]}}\nsteps:\n")
DRY = """\
  - id: key-untouched
    kind: step_not_done
    step: deactivate-key
    must_pass: true
settings:
  dry_run: true
  default_on_failure: none
"""


AGAIN = """\
  - id: again
    at: 10s
    event: {event}
    overrides:
      id: a-second-finding
      resource.accessKeyDetails.accessKeyId: AKIAFAKEFAKEFAKEFAKE
      createdAt: ${{now}}
      updatedAt: ${{now}}
expectations:
"""


def _drill(tmp_path: Path, runbook: str, *, again: bool = False) -> tuple[int, dict, list]:
    runbooks, playbooks = tmp_path / "runbooks", tmp_path / "playbooks"
    runbooks.mkdir()
    playbooks.mkdir()
    (runbooks / "silent-deactivation.yaml").write_text(runbook)
    (playbooks / EVENT.name).write_bytes(EVENT.read_bytes())  # an inject's event file lies beside its playbook
    playbook = PLAYBOOK.replace("must_pass: true\n", "must_pass: false\n")
    playbook = playbook.replace("expectations:\n", AGAIN, 1) if again else playbook
    playbook = playbook.format(event=EVENT.name, extra=DRY)
    (playbooks / "silent-runbook.yaml").write_text(playbook)
    result = CliRunner().invoke(app, ["tabletop", "run", str(playbooks / "silent-runbook.yaml"), "--runbooks",
                                      str(runbooks), "--json", "--report", str(tmp_path / "report")])
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert "cards" in out, out
    [card] = out["cards"]
    return result.exit_code, card, list(parse_lines(Path(card["timeline"]).read_bytes().splitlines()))


@pytest.mark.timeout(120)
def test_a_dry_run_drill_shows_the_page_a_protected_targets_refusal_would_send(tmp_path):
    """The refused deactivation is on the card with the planned page; nothing is paged or counted for real."""
    _, card, entries = _drill(tmp_path, GUARDED + PAGE_ON_FAILURE)
    planned = {e.body["step"]: e.body for e in entries if e.kind == EntryKind.STEP_PLANNED}
    assert planned["deactivate-key"]["would_refuse"] is True
    assert planned["page.deactivate-key"]["params"]["title"] == "deactivate-key refused"
    assert planned["page.deactivate-key"]["params"]["topic"] == "responder.notifications"
    [failure] = card["failures"]
    assert (failure["step"], failure["status"], failure["dry_run"], failure["told_by"]) == (
        "deactivate-key", "refused", True, ["page.deactivate-key"])
    assert "matches protected id" in failure["error"]
    assert [e for e in entries if e.kind in (EntryKind.STEP_RESULT, EntryKind.ESCALATION_MISSED)] == []
    assert "would be told: planned (page.deactivate-key)" in (tmp_path / "report" / "after-action.md").read_text()


@pytest.mark.timeout(120)
def test_a_dry_run_drill_without_an_escalation_shows_nobody_would_be_paged(tmp_path):
    """No on_failure and no default: the card shows the planned escalation.missed, flagged, and not counted."""
    _, card, entries = _drill(tmp_path, GUARDED)
    [missed] = [e.body for e in entries if e.kind == EntryKind.ESCALATION_MISSED]
    assert (missed["step"], missed["status"], missed["reason"], missed["dry_run"]) == (
        "deactivate-key", "refused", "no_on_failure", True)
    [failure] = card["failures"]
    assert (failure["dry_run"], failure["told_by"], failure["missed"]) == (True, [], "no_on_failure")
    assert any("a dry run: planned, not counted" in line for line in card["improvements"])


@pytest.mark.timeout(120)
def test_a_dry_run_drill_plans_the_page_once_when_the_refusal_repeats_in_the_incident(tmp_path):
    """A second finding refused in the same incident: its page is already done, as in production, not planned again."""
    _, card, entries = _drill(tmp_path, GUARDED + PAGE_ON_FAILURE, again=True)
    pages = [(e.kind, e.body.get("reason")) for e in entries if e.body.get("step") == "page.deactivate-key"]
    assert pages == [(EntryKind.STEP_PLANNED, None), (EntryKind.STEP_SKIPPED, "already_done")]
    first, second = card["failures"]
    assert (first["told_by"], first["already_done"]) == (["page.deactivate-key"], [])
    assert (second["told_by"], second["already_done"], second["dry_run"]) == ([], ["page.deactivate-key"], True)
    assert "would not be told again: planned (page.deactivate-key)" in \
        (tmp_path / "report" / "after-action.md").read_text()
