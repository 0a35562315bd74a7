"""An inject's event file is read only once confined, regular and within the cap: at load and at run time alike."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

import pytest

from responder.errors import PlaybookError
from responder.tabletop.eventfile import read_event
from responder.tabletop.inject import inject_records
from responder.tabletop.models import Inject
from responder.tabletop.world import Bindings
from tests.playbook_kit import LEAKED, refused, validate, write

TARGET = "decisions:\n  - {at: 60s, step: deactivate-key, target: %s, decision: deny}\n"
SAFETY = 30  # seconds: only so a regression fails instead of hanging the suite


def _playbook(tmp_path: Path, event: str, target: str = "zzz") -> Path:
    """The leaked-key playbook in tmp_path/drill, its inject naming `event`, a decision whose target is `target`."""
    drill = tmp_path / "drill"
    drill.mkdir(exist_ok=True)
    return write(drill, LEAKED.replace("event: event.json", f"event: {event}") + TARGET % target)


def _unblock(fifo: Path) -> None:
    """Give a reader stuck opening `fifo` its end of file (nothing when none is waiting)."""
    with contextlib.suppress(OSError):  # ENXIO: no reader, as it should be
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


def _validate_bounded(path: Path, fifo: Path) -> tuple[int, str]:
    """`tabletop validate` in a thread; fails (rather than hangs) when it blocks on `fifo`."""
    result: list[tuple[int, str]] = []
    worker = threading.Thread(target=lambda: result.append(validate(str(path))), daemon=True)
    worker.start()
    worker.join(SAFETY)
    blocked = worker.is_alive()
    _unblock(fifo)
    worker.join(SAFETY)
    assert (blocked, len(result)) == (False, 1), "validate blocked reading the FIFO"
    return result[0]


@pytest.mark.parametrize("where", ["inside", "outside"])
def test_a_fifo_event_file_is_refused_at_load_without_being_opened_for_reading(tmp_path, where):
    """A FIFO as the event file (in the playbook's directory or out of it) is refused at its line, never read."""
    (tmp_path / "drill").mkdir()
    fifo = tmp_path / ("drill/fifo.json" if where == "inside" else "fifo.json")
    os.mkfifo(fifo)
    path = _playbook(tmp_path, "fifo.json" if where == "inside" else str(fifo))
    code, out = _validate_bounded(path, fifo)
    expected = "is not a regular file" if where == "inside" else "outside the playbook's directory"
    assert (code, f"{path}:9:12" in out, expected in out) == (3, True, True), out


def test_an_outside_event_files_content_does_not_change_what_validate_says(tmp_path):
    """A refused outside file is never read: a decision target equal to its secret is still reported unknown."""
    secret = tmp_path / "secret.txt"
    secret.write_text("hunter2")
    for guess in ("hunter2", "letmein"):
        path = _playbook(tmp_path, str(secret), guess)
        refused(path, "9:12", "outside the playbook's directory", f"target {guess!r} is no world name")


def test_an_event_file_over_the_cap_is_refused_at_load(tmp_path):
    """An event file larger than the cap is refused at its line, naming the cap."""
    path = _playbook(tmp_path, "big.json")
    (path.parent / "big.json").write_bytes(b" " * (1024 * 1024 + 1))
    refused(path, "9:12", "event file 'big.json' is larger than 1048576 bytes")


def test_an_event_name_with_a_nul_byte_is_reported_at_its_line(tmp_path):
    """A NUL in the event name is a problem at the inject's line (exit 3), not an uncaught ValueError."""
    path = _playbook(tmp_path, '"ev\\0ent.json"')
    refused(path, "9:12", r"injects.0.event: event file 'ev\\x00ent.json' cannot name a file")


def test_the_run_time_read_refuses_a_fifo_swapped_in_after_load(tmp_path):
    """At run time the inject's read refuses a FIFO (e.g. swapped in after load) instead of blocking on it."""
    os.mkfifo(tmp_path / "event.json")
    inject = Inject(id="i", event="event.json")
    result: list[BaseException] = []

    def run() -> None:
        try:
            inject_records(inject, tmp_path, Bindings(), 0.0, {"alerts": "t"}, {})
        except PlaybookError as exc:
            result.append(exc)
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(SAFETY)
    blocked = worker.is_alive()
    _unblock(tmp_path / "event.json")
    worker.join(SAFETY)
    assert (blocked, [str(e) for e in result if "is not a regular file" in str(e)] != []) == (False, True), result


def test_an_event_naming_a_directory_is_refused_at_its_line_and_leaks_no_descriptor(tmp_path: Path) -> None:
    """`event: events` (a directory): refused as not a regular file, and the descriptor opened on it is closed."""
    (tmp_path / "events").mkdir()
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        with pytest.raises(PlaybookError, match="not a regular file"):
            read_event(tmp_path, "events")
    assert len(os.listdir("/proc/self/fd")) == before
