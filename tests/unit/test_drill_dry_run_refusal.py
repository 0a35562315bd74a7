"""`responder replay` and a drill's card list a step a dry run would refuse, with who would hear of it."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from responder.cli import app
from responder.tabletop.failures import NOBODY, TOLD, StepFailure, step_failures
from responder.tabletop.grading import Figures
from responder.tabletop.scorecard import improvements
from responder.timeline.recorder import Recorder
from tests.drill_kit import EVENT, RUNBOOK
from tests.drill_kit import PAGE as DRILL_PAGE
from tests.escalation_kit import PROTECTED
from tests.kit import DEACTIVATE_STEPS, ESCALATE, make_kit


def test_replay_shows_the_escalation_a_protected_step_would_page(tmp_path, monkeypatch):
    """`responder replay` lists a step a protected id would refuse, with the default's escalation planned for it."""
    monkeypatch.setenv("RESPONDER_DEFAULT_ON_FAILURE", json.dumps(DRILL_PAGE))
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    guarded = RUNBOOK.replace("steps:\n", "guards: {protected: {ids: [AKIAEXAMPLE*]}}\nsteps:\n")
    (runbooks / "silent-deactivation.yaml").write_text(guarded)
    result = CliRunner().invoke(app, ["replay", str(EVENT), "--runbooks", str(runbooks), "--json"])
    assert result.exit_code == 0
    out = json.loads(result.stdout)
    [failed] = out["failed"]
    assert (failed["step"], failed["status"], failed["escalation"]) == ("deactivate-key", "refused",
                                                                        ["page.deactivate-key"])
    assert "matches protected id" in failed["error"]
    # the page's fields carry ${failure.target}, the protected key: a notify step is not refused for it, so planned
    [page] = [p for p in out["planned"] if p["step"] == "page.deactivate-key"]
    assert str(page["params"]["fields"]["target"]).startswith("AKIAEXAMPLE")
    text = CliRunner().invoke(app, ["replay", str(EVENT), "--runbooks", str(runbooks)]).stdout
    assert "deactivate-key would be refused: " in text
    assert "escalated: page.deactivate-key" in text


async def test_the_drill_card_lists_a_planned_refusal_and_who_would_hear_of_it(tmp_path):
    """A dry run's refused step is a failure on the card, told by its planned escalation, or flagged when nobody."""
    entries = []
    for runbook in (PROTECTED + DEACTIVATE_STEPS + ESCALATE, PROTECTED + DEACTIVATE_STEPS):
        (tmp_path / str(len(entries))).mkdir()
        kit = make_kit(tmp_path / str(len(entries)), {"rb": runbook}, dry_run=True)
        await kit.send()
        entries.append(list(Recorder(kit.store).entries()))
    [told], [nobody] = (step_failures(e, lambda e: float(e.seq)) for e in entries)
    assert (told.step, told.status, told.dry_run, told.told_by, told.told) == (
        "deactivate", "refused", True, ["tell.deactivate"], TOLD)
    assert "would be refused (dry run)" in told.line()
    assert (nobody.missed, nobody.told) == ("no_on_failure", NOBODY)
    [review] = improvements([], Figures(), None, None, [told, nobody])
    assert "nobody was told of 1" in review
    assert "a dry run: planned, not counted" in review


def test_the_line_of_a_planned_refusal_says_who_would_be_told_in_plain_words():
    """A dry-run line reads `would be told`, `would not be told again` or `nobody would be told`, each planned."""
    base = {"t": 1.0, "incident": "i", "step": "s", "actuator": "a", "status": "refused", "error": "e", "dry_run": True}
    lines = [StepFailure.model_validate({**base, **extra}).line() for extra in (
        {"told_by": ["page.s"]}, {"already_done": ["page.s"]}, {"missed": "no_on_failure"})]
    assert [line.split("; ", 1)[1] for line in lines] == [
        "would be told: planned (page.s)", "would not be told again: planned (page.s)",
        "nobody would be told: planned (escalation.missed: no_on_failure)"]
