"""The entries after the last checkpoint: reported unproven, held to the cadence and interval that checkpoint signs."""

from __future__ import annotations

import orjson
import pytest
from typer.testing import CliRunner

from responder.cli import app
from responder.timeline import FileStore, Recorder
from tests.timeline_builders import (
    PRIVATE,
    PUBLIC,
    Clock,
    RecorderV1,
    no_timeline_env,  # noqa: F401 (the fixture every test here uses)
    rehash,
    write_signed,
)
from tests.timeline_builders import append_events as _append
from tests.timeline_builders import crash as _crash
from tests.timeline_builders import docs_of as _docs
from tests.timeline_builders import service_recorder as _service
from tests.timeline_builders import verify_json as _verify

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("no_timeline_env")


def test_an_edit_behind_deleted_checkpoints_spanning_past_the_interval_exits_4(tmp_path):
    """The audit's t3: entry 7 edited, the checkpoints after seq 4 deleted, rehashed: exit 4, not 0 "verified"."""
    path, clock = tmp_path / "t.jsonl", Clock()
    rec = _service(path, clock)
    _append(rec, clock, 20)  # 3 s apart: a checkpoint every 10 s, at seqs 4, 9, 14, 19 and on close
    rec.close()
    docs = _docs(path)
    kept = [d for d in docs if d["kind"] != "checkpoint" or d["seq"] == 4]
    kept[7]["body"]["i"] = 999
    path.write_bytes(rehash(kept))
    code, body = _verify(path)
    assert code == 4, body
    assert (body["ok"], body["verdict"], body["unproven_seqs"]) == (False, "unsigned_tail_past_interval", [5, 20])
    assert "deleting checkpoints" in str(body["reason"])


def test_the_cadence_a_checkpoint_signs_bounds_the_tail_not_the_verifiers_setting(tmp_path):
    """A writer signing every 3 entries: 6 unsigned after its last checkpoints were deleted fail (exit 1) at the 4th."""
    path = tmp_path / "t.jsonl"
    docs = [orjson.loads(line) for line in write_signed(path, n=9, every=3)]  # checkpoints at seqs 3, 7, 11
    kept = [d for d in docs if d["kind"] != "checkpoint" or d["seq"] == 3]
    kept[5]["body"]["i"] = 999
    path.write_bytes(rehash(kept))
    code, body = _verify(path)
    assert code == 1, body
    assert body["first_bad_seq"] == 7
    assert "more than 3 entries" in str(body["reason"])


def test_a_crashs_tail_exits_0_but_is_reported_unproven(tmp_path):
    """A writer killed between checkpoints: exit 0, verdict unsigned_tail with its seqs, the text says NOT proven."""
    path, clock = tmp_path / "t.jsonl", Clock()
    rec = _service(path, clock)
    _append(rec, clock, 4)  # the 4th, 12 s after the start, is followed by a checkpoint (seq 4)
    _append(rec, clock, 3)  # 9 s more: none due yet
    _crash(rec)
    code, body = _verify(path)
    assert code == 0, body
    assert (body["ok"], body["verdict"], body["unproven_seqs"], body["last_checkpoint"]) == (
        True, "unsigned_tail", [5, 7], 4)
    text = runner.invoke(app, ["timeline", "verify", str(path), "--public-key", PUBLIC])
    assert text.exit_code == 0
    assert "unsigned tail NOT proven" in text.stderr
    assert "entries verify" not in text.stdout  # only the signed part: "seq 0-4 verify, signed by checkpoint seq 4"
    assert "seq 0-4 verify" in text.stdout


def test_the_entry_whose_checkpoint_a_crash_tore_may_be_stamped_late(tmp_path):
    """Idle for an hour, one entry, its checkpoint torn by the crash: that last entry is late, and exit is still 0."""
    path, clock = tmp_path / "t.jsonl", Clock()
    rec = _service(path, clock)
    _append(rec, clock, 4)
    _append(rec, clock, 2)
    _append(rec, clock, 1, step=3600.0)  # due: a checkpoint follows it in the same write
    _crash(rec)
    raw = path.read_bytes()
    path.write_bytes(raw[:raw.rstrip(b"\n").rfind(b"\n") + 1])  # the crash tore that checkpoint's line
    code, body = _verify(path)
    assert code == 0, body
    assert (body["verdict"], body["unproven_seqs"]) == ("unsigned_tail", [5, 7])


def test_a_restart_as_the_same_host_pid_signs_the_crashs_tail_before_its_own_entries(tmp_path):
    """A crash's tail, a restart hours later under the same writer id (a pod's pid 1) that crashes too: exit 0."""
    path, clock = tmp_path / "t.jsonl", Clock()
    first = _service(path, clock, writer="pod:1")
    _append(first, clock, 4)
    _append(first, clock, 2)
    _crash(first)
    clock.now += 3 * 3600
    again = _service(path, clock, writer="pod:1")
    _append(again, clock, 2)
    _crash(again)
    kinds = [d["kind"] for d in _docs(path)]
    assert kinds[5:] == ["event.received"] * 2 + ["checkpoint"] + ["event.received"] * 2
    code, body = _verify(path)
    assert code == 0, body
    assert (body["verdict"], body["unproven_seqs"]) == ("unsigned_tail", [8, 9])


def test_a_restart_with_another_cadence_signs_first_so_its_tail_is_held_to_its_own(tmp_path):
    """Reopened with every=10 after checkpoints signing every=3: a checkpoint first, then 6 unsigned entries pass."""
    path, clock = tmp_path / "t.jsonl", Clock()
    rec = _service(path, clock, every=3)
    _append(rec, clock, 3, step=0.1)
    rec.close()
    again = _service(path, clock, every=10)
    _append(again, clock, 6, step=0.1)
    _crash(again)
    docs = _docs(path)
    assert [d["kind"] for d in docs][3:5] == ["checkpoint", "checkpoint"]
    assert (docs[4]["body"]["every"], docs[4]["body"]["interval_ms"]) == (10, 10_000)
    code, body = _verify(path)
    assert code == 0, body
    assert (body["cadence"], body["unsigned_tail"]) == (10, 6)


def test_a_checkpoints_signed_cadence_cannot_be_raised(tmp_path):
    """Raising the `every` a checkpoint signs (to allow a longer rewritten tail) breaks its signature: exit 1 there."""
    path = tmp_path / "t.jsonl"
    docs = [orjson.loads(line) for line in write_signed(path, n=4, every=3)]
    docs[3]["body"]["every"] = 1000
    path.write_bytes(rehash(docs))
    code, body = _verify(path)
    assert (code, body["first_bad_seq"]) == (1, 3), body
    assert "signature is invalid" in str(body["reason"])


def test_a_timeline_with_version_1_checkpoints_still_verifies_and_resumes(tmp_path):
    """A file signed before 2026-12-07 (version 1) verifies; a restart first adds a version-2 checkpoint, verified."""
    path, clock = tmp_path / "t.jsonl", Clock()
    old = _service(path, clock, every=3, cls=RecorderV1)
    _append(old, clock, 5, step=0.1)
    old.close()
    assert {d["body"]["v"] for d in _docs(path) if d["kind"] == "checkpoint"} == {1}
    code, body = _verify(path)
    assert (code, body["verdict"], body["cadence"], body["interval_ms"]) == (0, "verified", 1000, None), body
    _crash(_service(path, clock, every=3))  # opened and closed by a crash: nothing owed is written without an entry
    again = _service(path, clock, every=3)
    _append(again, clock, 1, step=0.1)
    again.close()
    versions = [d["body"]["v"] for d in _docs(path) if d["kind"] == "checkpoint"]
    assert versions == [1, 1, 2, 2]
    code, body = _verify(path)
    assert (code, body["verdict"], body["cadence"]) == (0, "verified", 3), body


def test_timeline_sign_refuses_a_torn_last_line_and_writes_nothing(tmp_path, monkeypatch):
    """The audit's t6: a file cut mid-line does not verify, and sign exits 1 with one line, the file unchanged."""
    path = tmp_path / "t.jsonl"
    write_signed(path, n=5, every=5)
    rec = Recorder(FileStore(path), writer="offline:host:42")  # an offline command without the key
    _append(rec, Clock(), 4)
    rec.close()
    path.write_bytes(path.read_bytes()[:-40])
    before = path.read_bytes()
    assert runner.invoke(app, ["timeline", "verify", str(path), "--public-key", PUBLIC]).exit_code == 1
    monkeypatch.setenv("RESPONDER_TIMELINE_SIGNING_KEY", PRIVATE)
    out = runner.invoke(app, ["timeline", "sign", str(path)])
    assert out.exit_code == 1, out.output
    [line] = out.stderr.splitlines()
    assert "torn" in line
    assert "not signed" in line
    assert path.read_bytes() == before
