"""A playbook inject's `event` file must lie inside the playbook's directory: refused at load otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.playbook_kit import LEAKED, refused, validate, write


def _playbook(tmp_path: Path, event: str) -> Path:
    """The leaked-key playbook in tmp_path/drill, its one inject naming `event`."""
    drill = tmp_path / "drill"
    drill.mkdir(exist_ok=True)
    return write(drill, LEAKED.replace("event: event.json", f"event: {event}"))


@pytest.mark.parametrize("event", ["ABS", "../outside.json", "events/../../outside.json", "link.json"],
                         ids=["absolute", "dotdot", "nested-dotdot", "symlink-out"])
def test_an_inject_event_outside_the_playbooks_directory_is_refused_at_its_line(tmp_path, event):
    """Absolute, `..` or symlinked-out event paths: exit 3 at the inject's `event` line, saying what is allowed."""
    outside = tmp_path / "outside.json"
    outside.write_text('{"detail": {}}')
    (tmp_path / "drill").mkdir()
    (tmp_path / "drill" / "link.json").symlink_to(outside)
    path = _playbook(tmp_path, str(outside) if event == "ABS" else event)
    refused(path, "9:12", "injects.0.event: event file ", "outside the playbook's directory",
            "by a relative path (symbolic links resolved)")


def test_an_inject_event_inside_the_playbooks_directory_loads(tmp_path):
    """A relative event path under the playbook's directory (a symlink staying inside too) is accepted."""
    events = tmp_path / "drill" / "events"
    events.mkdir(parents=True)
    (events / "e.json").write_text('{"detail": {"key": "AKIAEXAMPLE"}}')
    (tmp_path / "drill" / "alias.json").symlink_to(events / "e.json")
    for event in ("events/e.json", "alias.json"):
        code, out = validate(str(_playbook(tmp_path, event)))
        assert code == 0, out
