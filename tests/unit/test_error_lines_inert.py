"""A command's `✗` error line that quotes a file, a playbook or a baseline shows its text inert, markup as text."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from responder.cli import app
from responder.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
NAME = "x\x1b[2K\r[bold]boss\x07\u202e"  # no slash: it names a file too


def _raw(text: str) -> list[str]:
    """What in `text` a terminal would act on: ESC, CR, BEL, a bidi override."""
    return [c for c in text if c in "\x1b\r\x07\u202e"]


def _playbook(tmp_path: Path) -> Path:
    (tmp_path / "event.json").write_text("{}")
    path = tmp_path / "pb.yaml"
    path.write_text("id: pb\ntitle: t\nobjectives: [o]\ninjects:\n  - id: i\n    event: event.json\n"
                    "expectations:\n  - id: v\n    kind: timeline_verifies\n")
    return path


def test_tabletop_run_prints_a_baseline_error_inert(tmp_path):
    """`tabletop run --baseline` naming a malformed file whose name holds ESC, CR, BEL and markup: exit 3, escaped."""
    baseline = tmp_path / f"{NAME}.json"
    baseline.write_text("{not json")
    result = CliRunner().invoke(app, ["tabletop", "run", str(_playbook(tmp_path)), "--runbooks",
                                      str(ROOT / "runbooks"), "--baseline", str(baseline)])
    assert result.exit_code == 3, result.output
    assert not _raw(result.stderr), result.stderr
    assert "x\\x1b[2K\\x0d[bold]boss" in result.stderr, result.stderr


def test_tabletop_run_prints_a_suite_error_inert(tmp_path, monkeypatch):
    """An error the drill's run raises (text from a playbook) is printed with visible escapes, markup as text."""
    import responder.tabletop.suite as suite

    async def refused(*_: object, **__: object) -> None:
        raise ConfigError(f"playbook {NAME}: refused")

    monkeypatch.setattr(suite, "run_suite", refused)
    result = CliRunner().invoke(app, ["tabletop", "run", str(_playbook(tmp_path)), "--runbooks",
                                      str(ROOT / "runbooks")])
    assert result.exit_code == 3, result.output
    assert not _raw(result.stderr), result.stderr
    assert "[bold]boss" in result.stderr, result.stderr


@pytest.mark.parametrize("command", [["tabletop", "validate"], ["tabletop", "run"]])
def test_tabletop_prints_a_playbook_error_inert(tmp_path, command):
    """A playbook that does not load, whose file name holds escape sequences: listed with visible escapes."""
    bad = tmp_path / f"{NAME}.yaml"
    bad.write_text("id: [unclosed\n")
    result = CliRunner().invoke(app, [*command, str(bad), "--runbooks", str(ROOT / "runbooks")])
    assert result.exit_code == 3, result.output
    assert not _raw(result.stderr), result.stderr
    assert "x\\x1b[2K" in result.stderr, result.stderr


def test_runbooks_validate_prints_a_file_name_inert(tmp_path):
    """`runbooks validate` lists a broken runbook whose file name holds escape sequences with visible escapes."""
    (tmp_path / f"{NAME}.yaml").write_text("id: [unclosed\n")
    result = CliRunner().invoke(app, ["runbooks", "validate", str(tmp_path)])
    assert result.exit_code == 3, result.output
    assert not _raw(result.stderr), result.stderr
    assert "x\\x1b[2K" in result.stderr, result.stderr


def test_fail_and_config_errors_print_inert(capsys):
    """`fail()` and the root's ConfigError handler write each line escaped, a multi-line message one line each."""
    import typer

    from responder.cli.app import _config_exit
    from responder.cli.options import fail

    fail(f"bad {NAME}")
    with pytest.raises(typer.Exit):
        _config_exit([ConfigError(f"first {NAME}\nsecond {NAME}")])
    err = capsys.readouterr().err
    assert not _raw(err), err
    assert err.count("[bold]boss") == 3, err
    assert "✗ second x\\x1b[2K" in err, err


def test_runbooks_explain_prints_a_failed_check_inert(tmp_path):
    """`runbooks explain` prints an event's value in a failed check line with invisible characters as escapes."""
    import json

    doc = json.loads((ROOT / "playbooks" / "events" / "guardduty-leaked-access-key.json").read_text())
    doc["type"] = "Recon:IAMUser/X\u3164\u0301"
    path = tmp_path / "event.json"
    path.write_text(json.dumps(doc))
    result = CliRunner().invoke(app, ["runbooks", "explain", str(path), "--runbooks", str(ROOT / "runbooks")])
    assert "✗ " in result.stdout, result.output
    assert "\u3164" not in result.stdout, result.stdout
    assert "\u0301" not in result.stdout, result.stdout


def test_tabletop_validate_prints_a_good_playbooks_file_name_inert(tmp_path):
    """`tabletop validate` prints a good playbook's path holding escape sequences and markup as visible text."""
    (tmp_path / NAME).mkdir()
    good = _playbook(tmp_path / NAME)
    result = CliRunner().invoke(app, ["tabletop", "validate", str(good), "--runbooks", str(ROOT / "runbooks")])
    assert result.exit_code == 0, result.output
    assert not _raw(result.stdout), result.stdout
    assert "✓ " in result.stdout, result.stdout
    assert "[bold]boss" in result.stdout, result.stdout


def test_demo_names_its_timeline_file_as_text(tmp_path, capsys):
    """`demo --timeline` naming a file whose name holds ESC and markup (`[/x]` too): its ✓ line shows it, inert."""
    from types import SimpleNamespace

    from responder.cli.service import _demo_report

    path = tmp_path / f"{NAME}[/x].jsonl"
    result = SimpleNamespace(ok=True, key_id="AKIA", key_status="Inactive", entries=[], verified=3, head="ab" * 32,
                             seconds=1.0, broker_pid=None)
    _demo_report(result, path, json=False)
    out = capsys.readouterr().out
    assert not _raw(out), out
    assert "x\\x1b[2K\\x0d[bold]boss" in out, out
    assert "[/x].jsonl" in out, out
