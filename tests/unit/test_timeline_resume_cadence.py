"""A timeline a crash cut short still verifies under the cadence once the recorder resumes it."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from responder.timeline import FileStore, Recorder
from responder.timeline.checkpoint import Checker
from responder.timeline.verify import verify_lines
from tests.timeline_builders import PUBLIC, signed_recorder

CHECKER = Checker.from_text(PUBLIC)


def _resume_and_verify(path: Path, *, every: int, entries: int) -> None:
    """Reopen `path` signed with cadence `every`, append `entries` entries and close: the chain verifies strictly."""
    again = signed_recorder(path, every=every)
    for i in range(entries):
        again.append("x", {"i": i})
    again.close()
    verify_lines(path.read_bytes().splitlines(), CHECKER, cadence=every, strict=True)


def test_a_checkpoint_lost_to_a_torn_write_is_owed_at_resume(tmp_path):
    """The entry that reached the cadence is on disk, its checkpoint torn: the resumed chain still verifies."""
    path = tmp_path / "t.jsonl"
    rec = signed_recorder(path, every=5)
    for i in range(5):
        rec.append("x", {"i": i})  # the fifth appends a checkpoint right after it
    rec.flush_sync()
    rec.store.close()
    raw = path.read_bytes()
    cut = raw.rstrip(b"\n").rfind(b"\n") + 1
    assert orjson.loads(raw[cut:])["kind"] == "checkpoint"
    path.write_bytes(raw[:cut + 40])  # the crash tore the checkpoint line: it is dropped on reopen
    _resume_and_verify(path, every=5, entries=3)


def test_an_unsigned_run_longer_than_the_resume_window_is_counted(tmp_path):
    """A resume that reads only the file's tail checkpoints early enough that no run exceeds the cadence."""
    path = tmp_path / "t.jsonl"
    rec = signed_recorder(path, every=10)
    big = "x" * 40_000  # nine such entries outgrow the 256 KiB tail a resume reads
    for i in range(9):
        rec.append("x", {"i": i, "pad": big})
    rec.flush_sync()
    rec.store.close()  # a crash: no closing checkpoint
    _resume_and_verify(path, every=10, entries=4)


def test_a_last_entry_longer_than_the_resume_window_is_resumed_after(tmp_path):
    """A restart whose last entry alone outgrows the 256 KiB tail continues after it, not from seq 0."""
    path = tmp_path / "t.jsonl"
    rec = Recorder(FileStore(path), writer="w")
    rec.append("x", {"i": 0})
    rec.append("step.result", {"after": "x" * 300_000})  # a large actuator output, then a crash or an unsigned stop
    rec.close()
    again = Recorder(FileStore(path), writer="w")
    assert again.next_seq == 2
    again.append("x", {"i": 2})
    again.close()
    verify_lines(path.read_bytes().splitlines(), strict=True)


def test_a_torn_tail_is_dropped_without_reading_the_whole_history(tmp_path, monkeypatch):
    """A start after a crash that tore the last write reads back from the end only, however long the file is."""
    path = tmp_path / "t.jsonl"
    rec = Recorder(FileStore(path), writer="w")
    for i in range(3):
        rec.append("x", {"i": i, "pad": "p" * 100_000})
    rec.close()
    whole = path.read_bytes()
    with path.open("ab") as fh:
        fh.write(b'{"seq":3,"torn":"' + b"t" * 200_000)  # a torn write longer than one window
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("a start read the whole file"))
    again = Recorder(FileStore(path), writer="w")
    assert again.next_seq == 3
    again.close()
    monkeypatch.undo()
    assert path.read_bytes() == whole


def test_a_torn_file_with_no_whole_line_is_emptied(tmp_path):
    """A first write torn before its newline leaves nothing to keep: the file is cut back to empty."""
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"seq":0,"torn":"' + b"t" * 200_000)
    FileStore(path).close()
    assert path.read_bytes() == b""


def test_a_tail_of_no_bytes_still_ends_with_the_last_line(tmp_path):
    """tail(0) returns the last line rather than doubling a window of nothing for ever."""
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"a":1}\n{"b":2}\n')
    store = FileStore(path)
    assert store.tail(0).endswith(b'\n{"b":2}\n')
    store.close()
