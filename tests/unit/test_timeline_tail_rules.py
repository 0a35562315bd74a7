"""The second review of the unsigned tail: one writer per tail, a cut-back file, an empty one, the signer's cadence."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from responder.cli import app
from responder.settings import Settings
from responder.timeline import FileStore, Recorder
from responder.timeline.checkpoint import Signer
from tests.timeline_builders import (
    PRIVATE,
    Clock,
    RecorderV1,
    append_events,
    crash,
    cut_back_to_version_1,
    no_timeline_env,  # noqa: F401 (the fixture every test here uses)
    rewritten_tail,
    service_recorder,
)
from tests.timeline_builders import docs_of as _docs
from tests.timeline_builders import verify_json as _verify

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("no_timeline_env")


def _checkpoints(path: Path) -> list[dict]:
    return [d["body"] for d in _docs(path) if d["kind"] == "checkpoint"]


@pytest.mark.parametrize("hours", [False, True])
def test_an_unsigned_tail_relabelled_between_two_writer_ids_exits_4(tmp_path, hours):
    """The review's a_alt(_hours): svc:1/svc:2 alternating after deleted checkpoints is exit 4 (unproven), not 0."""
    path = tmp_path / "t.jsonl"
    rewritten_tail(path, lambda k: "svc:1" if k % 2 == 0 else "svc:2", hours)
    code, body = _verify(path)
    assert code == 4, body
    assert (body["ok"], body["verdict"], body["unproven_seqs"]) == (False, "unsigned_tail_two_writers", [5, 20])
    assert "entry seq 6 is writer svc:2's" in str(body["reason"])


def test_a_crashs_tail_then_an_offline_commands_entries_still_exit_0(tmp_path):
    """One service writer and an offline writer without the key in the tail: exit 0 unsigned_tail, as before."""
    path, clock = tmp_path / "t.jsonl", Clock()
    rec = service_recorder(path, clock)
    append_events(rec, clock, 6)
    crash(rec)
    offline = Recorder(FileStore(path), writer="offline:host:42:abc123")
    for i in range(2):
        clock.now += 3600.0
        offline.append("undo.intent", {"i": i}, "inc-1")
    offline.close()
    code, body = _verify(path)
    assert (code, body["verdict"]) == (0, "unsigned_tail"), body


def test_require_cadence_refuses_a_file_cut_back_to_a_version_1_checkpoint(tmp_path):
    """--require-cadence: a last checkpoint of version 1 fails (exit 1) naming it; without it, exit 0 unsigned_tail."""
    path = tmp_path / "t.jsonl"
    cut_back_to_version_1(path)
    code, body = _verify(path)
    assert (code, body["verdict"]) == (0, "unsigned_tail"), body
    code, body = _verify(path, "--require-cadence")
    assert code == 1, body
    assert body["first_bad_seq"] == 6
    assert "version 1" in str(body["reason"])


def test_require_cadence_accepts_a_file_whose_last_checkpoint_signs_its_cadence(tmp_path):
    """--require-cadence on a file upgraded from version-1 checkpoints whose last one is version 2: exit 0, verified."""
    path, clock = tmp_path / "t.jsonl", Clock()
    old = service_recorder(path, clock, every=3, cls=RecorderV1)
    append_events(old, clock, 2)
    old.close()
    new = service_recorder(path, clock, every=3)
    append_events(new, clock, 2)
    new.close()
    code, body = _verify(path, "--require-cadence")
    assert (code, body["verdict"]) == (0, "verified"), body


def test_an_empty_file_with_a_key_is_unproven_exit_4(tmp_path):
    """A zero-byte timeline proves nothing: exit 4, verdict no_entries, ok false, not "verified"."""
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"")
    code, body = _verify(path)
    assert code == 4, body
    assert (body["ok"], body["verdict"]) == (False, "no_entries")
    assert "no entries" in str(body["reason"])


def test_a_service_started_on_an_empty_file_writes_a_verified_timeline(tmp_path):
    """A fresh empty file (the service's first start) is written to as before, and then verifies: exit 0."""
    path, clock = tmp_path / "t.jsonl", Clock()
    path.write_bytes(b"")
    rec = service_recorder(path, clock)
    append_events(rec, clock, 2)
    rec.close()
    assert _verify(path)[0] == 0


def _service_with_a_tail(path: Path) -> None:
    """A service signing every 3 entries or 2 s, killed with 2 entries after its last checkpoint."""
    clock = Clock()
    rec = Recorder(FileStore(path), "svc:1", signer=Signer.from_text(PRIVATE), checkpoint_every=3,
                   checkpoint_interval=2.0, clock=clock)
    append_events(rec, clock, 5, step=0.1)
    crash(rec)


def test_timeline_sign_signs_the_files_cadence_not_the_signing_hosts(tmp_path, monkeypatch):
    """sign on a host with the defaults (1000, 10 s) keeps the cadence the service signed (3, 2 s): never wider."""
    path = tmp_path / "t.jsonl"
    _service_with_a_tail(path)
    monkeypatch.setenv("RESPONDER_TIMELINE_SIGNING_KEY", PRIVATE)
    out = runner.invoke(app, ["timeline", "sign", str(path)])
    assert out.exit_code == 0, out.output
    last = _checkpoints(path)[-1]
    assert (last["every"], last["interval_ms"]) == (3, 2000)
    assert _verify(path)[0] == 0


def test_an_offline_command_with_the_key_signs_the_files_cadence(tmp_path, monkeypatch):
    """An offline recorder with the key checkpoints with the cadence of the file's last checkpoint, not its settings."""
    path = tmp_path / "t.jsonl"
    _service_with_a_tail(path)
    monkeypatch.setenv("RESPONDER_TIMELINE_SIGNING_KEY", PRIVATE)
    offline = Recorder.offline(path, Settings())
    offline.append("step.intent", {"step": "operator"}, "inc-1")
    offline.close()
    assert {(b["every"], b["interval_ms"]) for b in _checkpoints(path)} == {(3, 2000)}
    assert _verify(path)[0] == 0


def test_timeline_sign_on_a_held_file_is_refused_for_the_lock_not_a_torn_line(tmp_path, monkeypatch):
    """A running service's file, mid-write: sign exits 3 naming the lock's holder, never "does NOT verify … torn"."""
    path = tmp_path / "t.jsonl"
    _service_with_a_tail(path)
    held = FileStore(path)  # the running service's lock
    try:
        with path.open("ab") as fh:
            fh.write(b'{"body":{"i"')  # its next line, half written
        before = path.read_bytes()
        monkeypatch.setenv("RESPONDER_TIMELINE_SIGNING_KEY", PRIVATE)
        out = runner.invoke(app, ["timeline", "sign", str(path)])
        assert out.exit_code == 3, out.output
        assert "in use by" in out.stderr
        assert "torn" not in out.stderr
        assert path.read_bytes() == before
    finally:
        held.close()
