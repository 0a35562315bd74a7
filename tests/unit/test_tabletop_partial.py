"""`tabletop validate` lists every problem in one pass: schema errors and the reference problems of what passed."""

from __future__ import annotations

from tests.playbook_kit import LEAKED, validate, write

BROKEN = LEAKED + """\
  - {id: matched, kind: runbook_matched}
  - {id: late, kind: step_done, step: no-such-step, after: nowhere}
"""  # line 17 has a schema error (no runbook); line 18 passes the schema but names no step and no inject


def _lines(path, text: str) -> list[str]:
    code, out = validate(str(write(path, text)))
    assert code == 3, out
    return [line.split(": ", 1)[0].rsplit("/", 1)[-1] for line in out.split("✗ ")[1:]]


def test_schema_errors_come_with_the_reference_problems_of_the_rest(tmp_path):
    """An item failing the schema is left out; the items that passed are still checked, each at its line."""
    text = BROKEN.replace("    event: event.json\n", "    event: event.json\n    colour: red\n").replace(
        "expectations:", "  - {id: retry, at: 30s, event: missing.json}\nexpectations:")
    assert _lines(tmp_path, text) == ["pb.yaml:10:13", "pb.yaml:19:5", "pb.yaml:13:33", "pb.yaml:20:60",
                                      "pb.yaml:20:39"]  # colour, runbook_matched; event file, after, step


def test_a_check_reading_a_left_out_item_waits(tmp_path):
    """An `after:` naming a left-out inject is not called unknown, nor a decision's target while an inject is out."""
    text = BROKEN.replace("after: nowhere", "after: second").replace(
        "expectations:", "  - {id: second, event: event.json, colour: red}\nexpectations:")
    text += "decisions:\n  - {at: 30s, step: deactivate-key, decision: approve, target: ghost}\n"
    code, out = validate(str(write(tmp_path, text)))
    assert (code, "colour" in out, "no-such-step" in out) == (3, True, True), out
    assert ("after: 'second'" in out, "ghost" in out) == (False, False), out


def test_an_error_in_the_world_lists_the_schema_errors_alone(tmp_path):
    """With `world` failing the schema (nearly every check reads it), only the schema errors are listed."""
    text = BROKEN.replace("    - {name: ml-training", "    - {nam: ml-training")
    assert _lines(tmp_path, text) == ["pb.yaml:6:7", "pb.yaml:6:13", "pb.yaml:17:5"]
