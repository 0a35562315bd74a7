"""After-action reports and postmortem drafts keep text from alerts and playbooks inside its cell or line."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from responder.cli import app
from responder.tabletop.grading import Card, Figures, Grade
from responder.tabletop.report import markdown
from responder.tabletop.suite import SuiteResult
from tests.timeline_builders import incident_timeline

FORGED = "x | forged | cell |\n## Forged heading\n| forged | row |"


def _cells(row: str) -> int:
    """How many cells a Markdown table row has (an escaped `\\|` is text)."""
    return len(re.findall(r"(?<!\\)\|", row)) - 1


def _lines_with(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]


def test_after_action_cells_and_lines_escape_pipes_and_newlines():
    """A title, error, evidence, instead, improvement or regression with `|` or a newline stays on its own line."""
    g = Grade(id="key-off", kind="state", status="FAIL", weight=1, must_pass=True,  # type: ignore[arg-type]
              evidence=[f"evidence {FORGED}"], instead=f"instead {FORGED}")
    card = Card(playbook="leaked", title=f"title {FORGED}", path="p", status="FAIL", score=0.0,  # type: ignore[arg-type]
                grades=[g], figures=Figures(collateral=[f"roles/{FORGED}"]), timeline="t.jsonl",
                error=f"error {FORGED}", improvements=[f"improve {FORGED}"], incidents=[])
    md = markdown(SuiteResult(cards=[card], key_id="k", public_key="p", wall_seconds=1.0), [f"regress {FORGED}"])
    assert _lines_with(md, "Forged heading") == _lines_with(md, "forged")  # each value on its own line
    assert len(_lines_with(md, "forged")) == 7
    assert not any(line.startswith(("## Forged", "| forged")) for line in md.splitlines())
    [row] = [line for line in md.splitlines() if line.startswith("| leaked |")]
    assert _cells(row) == 7  # whatever the collateral holds


def test_postmortem_table_cells_escape_pipes_and_newlines(tmp_path):
    """Timeline text with `|` or a newline stays in its postmortem cell or line: no forged row or heading."""
    path = tmp_path / "t.jsonl"
    rec = incident_timeline(path)
    rec.append("step.result", {"step": "s", "actuator": "a.b", "target": f"x {FORGED}", "status": "failed",
                               "error": f"boom {FORGED}", "prior": "`|\n## p"}, "inc-1")
    rec.append("approval.decided", {"step": "s", "decision": "deny", "by": f"eve {FORGED}"}, "inc-1")
    rec.close()
    result = CliRunner().invoke(app, ["timeline", "postmortem", "inc-1", "--timeline", str(path)])
    assert result.exit_code == 0, result.output
    draft = result.stdout
    assert not any(line.startswith(("## Forged", "| forged", "## p")) for line in draft.splitlines())
    rows = [line for line in draft.splitlines() if line.startswith("| +")]
    assert len(rows) == 5
    assert [_cells(row) for row in rows] == [4] * 5
