"""A leaked-key playbook to vary in load-check tests, and `tabletop validate` through the CLI against the runbooks."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from responder.cli import app

ROOT = Path(__file__).resolve().parents[1]  # the repository
LEAKED = """\
id: pb
title: t
objectives: [o]
world:
  users:
    - {name: ml-training, keys: [leaked, spare]}
injects:
  - id: finding
    event: event.json
    overrides:
      detail.key: ${world.keys.leaked}
expectations:
  - id: key-off
    kind: state
    check: key_inactive
    resource: leaked
"""  # 16 lines: what a test appends starts on line 17


def write(tmp_path: Path, text: str, name: str = "pb") -> Path:
    """The playbook `name`.yaml and the event file it injects (carrying `AKIAEXAMPLE`), in `tmp_path`."""
    (tmp_path / "event.json").write_text('{"detail": {"key": "AKIAEXAMPLE"}}')
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def validate(*args: str) -> tuple[int, str]:
    """`tabletop validate` against the shipped runbooks: its exit code and its output on one line."""
    result = CliRunner().invoke(app, ["tabletop", "validate", "--runbooks", str(ROOT / "runbooks"), *args])
    return result.exit_code, result.output.replace("\n", "")


def refused(path: Path, where: str, *messages: str) -> None:
    """`tabletop validate` exits 3 with a problem at `path:where` and each of `messages` in its output."""
    code, out = validate(str(path))
    assert (code, f"{path}:{where}" in out, [m for m in messages if m not in out]) == (3, True, []), out
