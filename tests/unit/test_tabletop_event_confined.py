"""A playbook inject's `event` file must lie inside the playbook's directory: refused at load otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from responder.cli import app

ROOT = Path(__file__).resolve().parents[2]

PLAYBOOK = """\
id: pb
title: t
objectives: [o]
world:
  users:
    - {name: alice, keys: [main]}
injects:
  - id: finding
    event: EVENT
expectations:
  - id: matched
    kind: runbook_matched
    runbook: access-key-compromise
"""


def _validate(tmp_path: Path, event: str) -> tuple[int, str, Path]:
    """`tabletop validate` of a playbook in tmp_path/drill whose one inject names `event`."""
    drill = tmp_path / "drill"
    drill.mkdir(exist_ok=True)
    path = drill / "pb.yaml"
    path.write_text(PLAYBOOK.replace("EVENT", event))
    result = CliRunner().invoke(app, ["tabletop", "validate", "--runbooks", str(ROOT / "runbooks"), str(path)])
    return result.exit_code, result.output.replace("\n", ""), path


@pytest.mark.parametrize("event", ["ABS", "../outside.json", "events/../../outside.json", "link.json"],
                         ids=["absolute", "dotdot", "nested-dotdot", "symlink-out"])
def test_an_inject_event_outside_the_playbooks_directory_is_refused_at_its_line(tmp_path, event):
    """Absolute, `..` or symlinked-out event paths: exit 3 at the inject's `event` line, saying what is allowed."""
    outside = tmp_path / "outside.json"
    outside.write_text('{"detail": {}}')
    (tmp_path / "drill").mkdir()
    (tmp_path / "drill" / "link.json").symlink_to(outside)
    code, out, path = _validate(tmp_path, str(outside) if event == "ABS" else event)
    assert code == 3, out
    assert f"{path}:9:12: injects.0.event: event file " in out, out
    assert "outside the playbook's directory" in out, out


def test_an_inject_event_inside_the_playbooks_directory_loads(tmp_path):
    """A relative event path under the playbook's directory (a symlink staying inside too) is accepted."""
    events = tmp_path / "drill" / "events"
    events.mkdir(parents=True)
    (events / "e.json").write_text('{"detail": {}}')
    (tmp_path / "drill" / "alias.json").symlink_to(events / "e.json")
    for event in ("events/e.json", "alias.json"):
        code, out, _ = _validate(tmp_path, event)
        assert code == 0, out
