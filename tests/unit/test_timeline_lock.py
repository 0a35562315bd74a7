"""One writer per timeline file: an exclusive lock, and no appending to a chain that is already broken."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from responder.cli import app
from responder.errors import ChainBroken, TimelineLocked
from responder.sandbox import lifeline
from responder.timeline import FileStore, Recorder

ROOT = Path(__file__).resolve().parents[2]


def _timeline(path: Path, n: int = 5) -> None:
    rec = Recorder(FileStore(path), writer="test")
    for i in range(n):
        rec.append("step.intent", {"i": i}, incident="inc-1")
    rec.close()


def test_a_second_writer_is_refused_naming_the_holder(tmp_path):
    """While one FileStore holds the file, another is refused with the holder's pid; after close it opens."""
    path = tmp_path / "t.jsonl"
    first = FileStore(path)
    with pytest.raises(TimelineLocked, match=rf"{path} is in use by pid {os.getpid()}"):
        FileStore(path)
    first.close()
    FileStore(path).close()


def test_undo_against_a_live_timeline_is_refused(tmp_path):
    """`responder undo` on the file a running service holds exits 3 with one line and writes nothing."""
    path = tmp_path / "t.jsonl"
    _timeline(path)
    before = path.read_bytes()
    holder = Recorder(FileStore(path), writer="service")
    try:
        result = CliRunner().invoke(app, ["undo", "inc-1", "--timeline", str(path)])
    finally:
        holder.close()
    assert result.exit_code == 3, result.output
    assert f"is in use by pid {os.getpid()}" in result.stderr
    assert path.read_bytes() == before


def _break(path: Path) -> None:
    """Append a copy of entry 2 at the end: what a second writer from an old head leaves (a sequence gap)."""
    lines = path.read_bytes().splitlines()
    path.write_bytes(b"\n".join([*lines, lines[2]]) + b"\n")


def test_a_recorder_never_builds_on_a_broken_chain(tmp_path):
    """Opening a timeline whose links are broken raises ChainBroken naming the entry; nothing is appended."""
    path = tmp_path / "t.jsonl"
    _timeline(path)
    _break(path)
    before = path.read_bytes()
    with pytest.raises(ChainBroken) as caught:
        Recorder(FileStore(path))
    assert caught.value.seq == 2
    assert "sequence gap" in str(caught.value)
    assert path.read_bytes() == before


def test_run_refuses_to_start_on_a_broken_chain(tmp_path):
    """`responder run` on a broken timeline exits non-zero naming the entry, and leaves the file as it was."""
    path = tmp_path / "t.jsonl"
    _timeline(path)
    _break(path)
    before = path.read_bytes()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RESPONDER_")},
           "RESPONDER_KAFKA_BOOTSTRAP": "127.0.0.1:9", "RESPONDER_KAFKA_CONNECT_TIMEOUT": "1",
           "RESPONDER_TIMELINE_PATH": str(path)}
    proc = lifeline.run([sys.executable, "-m", "responder", "run"], cwd=ROOT, env=env, capture_output=True,
                        timeout=60, check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 3, err
    assert "entry 2" in err.strip().splitlines()[-1]
    assert "Traceback" not in err
    assert path.read_bytes() == before
    assert orjson.loads(before.splitlines()[-1])["seq"] == 2
