"""Tabletop reports: regressions against a baseline, the improvement list, JUnit XML and the SVG timelines."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from responder.tabletop.grading import Card, Figures, Grade
from responder.tabletop.report import html_report, junit, markdown, regressions
from responder.tabletop.suite import SuiteResult


def _card(status: str, grade: str, contain: float | None, collateral: list[str]) -> Card:
    g = Grade(id="key-off", kind="state", status=grade, weight=1, must_pass=True,  # type: ignore[arg-type]
              evidence=[] if grade != "PASS" else ["key k is Inactive"],
              instead="" if grade == "PASS" else "key k is Active")
    incidents = [{"incident": "inc-1", "injects": [{"t": 0.0, "kind": "inject", "label": "finding"}],
                  "entries": [{"t": 5.0, "kind": "step.result", "label": "deactivate-key", "status": "ok",
                               "evidence": "#4 t+5s step.result status=ok"}]}]
    return Card(playbook="leaked", title="t", path="p", status=status, score=1.0 if grade == "PASS" else 0.0,  # type: ignore[arg-type]
                grades=[g], figures=Figures(time_to_contain=contain, collateral=collateral), timeline="t.jsonl",
                improvements=[] if grade == "PASS" else ["Must fix: key-off"], incidents=incidents)


def _result(card: Card) -> SuiteResult:
    return SuiteResult(cards=[card], key_id="k", public_key="p", wall_seconds=1.0)


def test_baseline_regressions_are_listed():
    """A scenario or expectation that got worse, a longer time to contain and new collateral are regressions."""
    old = _result(_card("PASS", "PASS", 5.0, [])).model_dump(mode="json")
    now = _result(_card("FAIL", "FAIL", None, ["roles/r"]))
    assert regressions(now, old) == [
        "leaked: PASS → FAIL", "leaked/key-off: PASS → FAIL (key k is Active)",
        "leaked: time to contain 5.0s → -", "leaked: new collateral ['roles/r']"]
    assert regressions(_result(_card("PASS", "PASS", 5.0, [])), old) == []


def test_markdown_junit_and_svg():
    """The after-action report lists improvements, JUnit has a failure per failed expectation, HTML has an SVG."""
    result = _result(_card("FAIL", "FAIL", None, []))
    md = markdown(result, ["leaked: PASS → FAIL"])
    assert "1. leaked: Must fix: key-off" in md
    assert "## Regressions against the baseline" in md
    suite = ET.fromstring(junit(result)).find("testsuite")
    assert suite is not None
    assert suite.get("failures") == "1"
    html = html_report(result)
    svg = html[html.index("<svg"):html.index("</svg>") + 6]
    ns = "{http://www.w3.org/2000/svg}"
    titles = [t.text for t in ET.fromstring(svg).iter(f"{ns}title")]  # well-formed, one mark per entry and inject
    assert titles == ["inject finding at t+0s", "#4 t+5s step.result status=ok"]


def test_unreadable_baseline_is_refused_before_the_run(tmp_path, monkeypatch):
    """`tabletop run --baseline` with a missing or malformed file exits 3 with a message, before any scenario runs."""
    from pathlib import Path

    from typer.testing import CliRunner

    import responder.tabletop.suite as suite
    from responder.cli import app

    ran: list[int] = []

    async def fake_suite(*_args: object, **_kw: object) -> SuiteResult:
        ran.append(1)
        return _result(_card("PASS", "PASS", 5.0, []))

    monkeypatch.setattr(suite, "run_suite", fake_suite)
    (tmp_path / "event.json").write_text("{}")
    (tmp_path / "pb.yaml").write_text("id: pb\ntitle: t\nobjectives: [o]\ninjects:\n  - id: i\n    event: event.json\n"
                                      "expectations:\n  - id: v\n    kind: timeline_verifies\n")
    runbooks = str(Path(__file__).resolve().parents[2] / "runbooks")
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "list.json").write_text("[1, 2]")
    for baseline in ("missing.json", "bad.json", "list.json"):
        result = CliRunner().invoke(app, ["tabletop", "run", str(tmp_path / "pb.yaml"), "--runbooks", runbooks,
                                          "--baseline", str(tmp_path / baseline)])
        assert (result.exit_code, result.exception is None or isinstance(result.exception, SystemExit)) == (3, True), \
            (baseline, result.output, result.exception)
        assert baseline in result.output.replace("\n", "")
    assert ran == []


def test_console_scorecard_prints_scenario_text_literally():
    """Brackets in what happened (errors, targets) are printed as written: not read as Rich markup, never a crash."""
    import io

    from rich.console import Console

    from responder.tabletop.report import print_scorecard

    card = _card("FAIL", "FAIL", None, [])
    card.grades[0].instead = "error=1 validation error [type=missing, input_value={}] see [/docs]"
    card.error = "RuntimeError: the service stopped: [/bad] [bold]x"
    out = io.StringIO()
    print_scorecard(_result(card), Console(file=out, width=300, color_system=None), [])
    text = out.getvalue()
    assert "[type=missing, input_value={}] see [/docs]" in text
    assert "the service stopped: [/bad] [bold]x" in text


def test_baseline_must_hold_what_regressions_read(tmp_path):
    """A baseline whose statuses or grades `regressions` could not read is refused at load (not after the run)."""
    import json

    import pytest

    from responder.errors import ConfigError
    from responder.tabletop.report import load_baseline

    good = _result(_card("FAIL", "FAIL", None, [])).model_dump(mode="json")
    (tmp_path / "good.json").write_text(json.dumps(good))
    assert load_baseline(tmp_path / "good.json") == good
    bad_grade = {"cards": [{"playbook": "leaked", "status": "PASS", "grades": [{"id": "key-off"}]}]}
    bad_status = {"cards": [{"playbook": "leaked", "status": "GREEN"}]}
    for name, doc, where in (("grade", bad_grade, "cards.0.grades.0.status"), ("status", bad_status, "cards.0.status")):
        (tmp_path / f"{name}.json").write_text(json.dumps(doc))
        with pytest.raises(ConfigError, match=f"not a `tabletop run --json` result: {where}"):
            load_baseline(tmp_path / f"{name}.json")


HOSTILE = "x\x1b]0;pwned\x07\x1b[2J\u202egnp.exe\u200b\nnext\x00\x0b\ufffe"  # OSC title, clear, bidi, NUL, VT


def test_console_scorecard_neutralises_control_and_bidi_characters():
    """Escape sequences, bidi overrides and newlines from playbooks or the sandbox are printed as visible escapes."""
    import io

    from rich.console import Console

    from responder.tabletop.failures import StepFailure
    from responder.tabletop.report import print_scorecard

    card = _card("FAIL", "FAIL", None, [f"roles/{HOSTILE}"])
    card.grades[0].instead = HOSTILE
    card.error = f"RuntimeError: {HOSTILE}"
    card.defaulted = [HOSTILE]
    card.failures = [StepFailure(t=1.0, incident="i", step="s", actuator="a", status="failed", error=HOSTILE)]
    out = io.StringIO()
    print_scorecard(_result(card), Console(file=out, width=300, color_system=None), [f"leaked: {HOSTILE}"])
    text = out.getvalue()
    for raw in ("\x1b", "\x07", "\u202e", "\u200b", "\x00", "\x0b", "\ufffe", "\nnext"):
        assert raw not in text, repr(raw)
    assert "\\x1b]0;pwned\\x07" in text
    assert "\\u202egnp.exe" in text


def test_junit_is_well_formed_xml_whatever_the_text(tmp_path):
    """junit.xml parses with xml.etree when an error or what happened instead holds characters XML 1.0 forbids."""
    from responder.tabletop.report import write_all

    card = _card("FAIL", "FAIL", None, [])
    card.grades[0].instead = HOSTILE
    card.error = f"RuntimeError: {HOSTILE}"
    write_all(_result(card), tmp_path, [])
    root = ET.parse(tmp_path / "junit.xml").getroot()
    messages = [f.get("message") or "" for f in root.iter("failure")]
    assert len(messages) == 2
    assert all("\\x1b]0;pwned\\x07" in m and "\\x00" in m and "\\ufffe" in m for m in messages), messages


def test_junit_counts_the_scenario_testcase_of_a_scenario_that_did_not_finish():
    """A scenario that stopped with an error counts its `scenario` testcase in `tests` as in `failures`."""
    card = _card("FAIL", "FAIL", None, [])
    card.grades.append(card.grades[0].model_copy(update={"id": "key-on", "status": "PASS"}))
    card.error = "stopped at its deadline of 60 s (wall); the scenario hung"
    suite = ET.fromstring(junit(_result(card))).find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert (suite.get("tests"), suite.get("failures"), len(cases), sum(c.find("failure") is not None for c in cases)) \
        == ("3", "2", 3, 2)
