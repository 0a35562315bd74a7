"""An offline command's unsigned entries past the cadence: their own verdict (exit 4), never a way to hide an edit."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from responder.cli import app
from responder.errors import ChainBroken
from responder.timeline import FileStore, Recorder
from responder.timeline.checkpoint import Checker, Signer
from responder.timeline.verify import split_lines, verify_lines
from tests.timeline_builders import (
    PRIVATE,
    PUBLIC,
    no_timeline_env,  # noqa: F401 (the fixture the settings here build on)
    rehash,
    write_signed,
)

runner = CliRunner()
CADENCE = 5


@pytest.fixture(autouse=True)
def _settings_env(no_timeline_env, monkeypatch):  # noqa: F811 (the imported fixture, requested first)
    """The cadence of the timelines built here, after `no_timeline_env`; no signing key unless a test sets one."""
    monkeypatch.setenv("RESPONDER_TIMELINE_CHECKPOINT_EVERY", str(CADENCE))


def _offline(path: Path, n: int, writer: str = "offline:host:42:a1b2c3") -> None:
    """What an offline command without the signing key adds: `n` entries by its own (offline) writer, unsigned."""
    rec = Recorder(FileStore(path), writer=writer, checkpoint_every=CADENCE)
    for i in range(n):
        rec.append("undo.intent", {"op": i}, incident="inc")
    rec.close()


def _past_cadence(path: Path) -> None:
    """A signed timeline, then two offline commands without the key: 4 + 3 unsigned entries, past the cadence (5)."""
    write_signed(path, n=5, every=CADENCE)
    _offline(path, 4, writer="offline:host:42:a1b2c3")
    _offline(path, 3, writer="offline:host:43:d4e5f6")


def _service(path: Path, n: int) -> None:
    """The service resumes with the key, appends `n` entries (checkpointing at the cadence) and stops."""
    rec = Recorder(FileStore(path), writer="svc", signer=Signer.from_text(PRIVATE), checkpoint_every=CADENCE,
                   checkpoint_interval=3600.0)
    for i in range(n):
        rec.append("step.intent", {"svc": i}, incident="inc")
    rec.close()


def _verify(*paths: Path) -> tuple[int, dict[str, object]]:
    out = runner.invoke(app, ["timeline", "verify", *map(str, paths), "--public-key", PUBLIC, "--json"])
    return out.exit_code, orjson.loads(out.stdout.splitlines()[-1])


def _check(path: Path) -> None:
    verify_lines(split_lines(path.read_bytes()), Checker.from_text(PUBLIC), cadence=CADENCE, strict=True)


def test_an_offline_tail_past_the_cadence_is_reported_as_unsigned_not_broken(tmp_path):
    """An offline writer's unsigned tail past the cadence makes verify exit 4 with unsigned_offline_tail, naming it."""
    path = tmp_path / "t.jsonl"
    write_signed(path, n=8, every=CADENCE)  # 8 entries + checkpoints at 5 and on close: the tail is signed
    rec = Recorder(FileStore(path), writer="test")  # a service without its key left 3 unsigned entries
    for i in range(3):
        rec.append("step.intent", {"late": i}, incident="inc")
    rec.close()
    _offline(path, 4)
    code, body = _verify(path)
    assert code == 4, body
    assert body["ok"] is False
    assert body["verdict"] == "unsigned_offline_tail"
    assert "first_bad_seq" not in body
    assert body["unsigned_tail"] == 7
    [run] = body["offline_writers"]
    assert run == {"writer": "offline:host:42:a1b2c3", "first_seq": 13, "last_seq": 16, "entries": 4,
                   "signed_by": None}
    assert "seq 13-16 by offline:host:42:a1b2c3" in str(body["reason"])
    assert "responder timeline sign" in str(body["reason"])


def test_the_human_readable_verdict_names_the_offline_writer_and_exits_4(tmp_path):
    """Without --json: one line on stderr saying NOT fully proven, the offline writer's seqs, how to sign; exit 4."""
    path = tmp_path / "t.jsonl"
    _past_cadence(path)
    out = runner.invoke(app, ["timeline", "verify", str(path), "--public-key", PUBLIC])
    assert out.exit_code == 4, out.output
    assert "NOT fully proven" in out.stderr
    assert "by offline:host:42:a1b2c3" in out.stderr


def test_within_the_cadence_an_offline_tail_verifies_and_is_listed(tmp_path):
    """An offline run that stays within the cadence is an ordinary unsigned tail: exit 0, the writer listed."""
    path = tmp_path / "t.jsonl"
    write_signed(path, n=5, every=CADENCE)
    _offline(path, 2)
    code, body = _verify(path)
    assert code == 0, body
    assert body["verdict"] == "unsigned_tail"  # exit 0, but not "verified" (before 2026-12-07 it said so)
    assert body["unproven_seqs"] == [6, 7]
    assert [r["writer"] for r in body["offline_writers"]] == ["offline:host:42:a1b2c3"]
    text = runner.invoke(app, ["timeline", "verify", str(path), "--public-key", PUBLIC])
    assert "2 entries (seq" in text.stdout
    assert "by offline writer offline:host:42:a1b2c3" in text.stdout


def test_the_services_next_checkpoint_seals_an_offline_run_past_the_cadence_but_leaves_it_unproven(tmp_path):
    """A restart's checkpoint signs an offline run past the cadence; verify still exits 4 until it is acknowledged."""
    path = tmp_path / "t.jsonl"
    _past_cadence(path)
    _service(path, 3)
    code, body = _verify(path)
    assert (code, body["verdict"]) == (4, "signed_unproven_tail"), body  # before 2026-12-07: 0, verified
    first, second = body["offline_writers"]
    assert first["signed_by"] == second["signed_by"] == second["last_seq"] + 1  # checkpointed at once on resume
    [run] = body["signed_unproven"]
    assert (run["verdict"], run["signed_by"]) == ("unsigned_offline_tail", second["last_seq"] + 1)


def test_timeline_sign_signs_an_offline_tail_and_verify_then_passes(tmp_path, monkeypatch):
    """`timeline sign --force` signs an offline tail past the cadence (plain sign refuses it, exit 1); verify: 0."""
    path = tmp_path / "t.jsonl"
    _past_cadence(path)
    monkeypatch.setenv("RESPONDER_TIMELINE_SIGNING_KEY", PRIVATE)
    refused = runner.invoke(app, ["timeline", "sign", str(path)])
    assert refused.exit_code == 1, refused.output
    assert "verdict unsigned_offline_tail, not signed" in refused.stderr
    out = runner.invoke(app, ["timeline", "sign", str(path), "--force", "--json"])
    assert out.exit_code == 0, out.output
    assert orjson.loads(out.stdout)["signed"] == 7
    code, body = _verify(path)
    assert (code, body["unsigned_tail"]) == (0, 0), body
    again = runner.invoke(app, ["timeline", "sign", str(path)])
    assert again.exit_code == 0
    assert "nothing to sign" in again.stdout


def test_timeline_sign_refuses_an_edited_timeline_and_writes_nothing(tmp_path, monkeypatch):
    """An entry edited and rehashed in the offline tail: sign exits 1 naming it and leaves the file as it was."""
    path = tmp_path / "t.jsonl"
    write_signed(path, n=5, every=CADENCE)
    _offline(path, 3)
    docs = [orjson.loads(ln) for ln in path.read_bytes().splitlines()]
    docs[2]["body"]["i"] = 999  # before the last checkpoint, then rehashed
    path.write_bytes(rehash(docs))
    before = path.read_bytes()
    monkeypatch.setenv("RESPONDER_TIMELINE_SIGNING_KEY", PRIVATE)
    out = runner.invoke(app, ["timeline", "sign", str(path)])
    assert out.exit_code == 1, out.output
    assert "not signed" in out.stderr
    assert path.read_bytes() == before


def test_timeline_sign_without_the_key_exits_3(tmp_path):
    """No RESPONDER_TIMELINE_SIGNING_KEY: one line naming it, exit 3."""
    path = tmp_path / "t.jsonl"
    write_signed(path, n=5, every=CADENCE)
    out = runner.invoke(app, ["timeline", "sign", str(path)])
    assert out.exit_code == 3
    assert "RESPONDER_TIMELINE_SIGNING_KEY" in out.stderr


def test_checkpoints_deleted_and_the_tail_relabelled_offline_still_fail(tmp_path):
    """Deleting the last checkpoints and relabelling the unsigned tail as one offline writer still fails verify (1)."""
    path = tmp_path / "t.jsonl"
    docs = [orjson.loads(ln) for ln in write_signed(path, n=20, every=CADENCE)]
    cps = [i for i, d in enumerate(docs) if d["kind"] == "checkpoint"]
    kept = [d for i, d in enumerate(docs) if i not in cps[1:]]  # keep the first checkpoint (seq 5)
    for d in kept[6:]:
        d["writer"] = "offline:host:42:a1b2c3"
    kept[8]["body"]["i"] = 999
    path.write_bytes(rehash(kept))
    code, body = _verify(path)
    assert code == 1, body
    assert "offline writer offline:host:42:a1b2c3 wrote more than 5 entries" in str(body["reason"])


def test_an_offline_writer_starting_past_the_cadence_fails(tmp_path):
    """An offline writer starting after more than the cadence of unsigned service entries fails verify."""
    path = tmp_path / "t.jsonl"
    write_signed(path, n=5, every=CADENCE)
    _offline(path, 4, writer="offline:a:1")
    _offline(path, 3, writer="offline:b:2")  # starts after 4: allowed, the run is now 7
    _check(path)
    _offline(path, 1, writer="offline:c:3")  # starts after 7 > 5
    with pytest.raises(ChainBroken, match="starts after 7 entries"):
        _check(path)


def test_service_entries_after_an_offline_run_past_the_cadence_fail(tmp_path):
    """Entries of a non-offline writer after the run passed the cadence are what a rewrite looks like: exit 1."""
    path = tmp_path / "t.jsonl"
    _past_cadence(path)
    rec = Recorder(FileStore(path), writer="svc")  # no key: it cannot checkpoint
    rec.append("step.intent", {"x": 1}, incident="inc")
    rec.close()
    with pytest.raises(ChainBroken, match="cadence"):
        _check(path)


def test_verify_of_several_files_exits_4_only_when_nothing_is_broken(tmp_path):
    """One file with an offline tail and one intact: exit 4; a broken third file makes it 1."""
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    _past_cadence(a)
    write_signed(b, n=5, every=CADENCE)
    out = runner.invoke(app, ["timeline", "verify", str(a), str(b), "--public-key", PUBLIC])
    assert out.exit_code == 4, out.output
    lines = write_signed(c, n=5, every=CADENCE)
    c.write_bytes(b"\n".join(lines[1:]) + b"\n")
    out = runner.invoke(app, ["timeline", "verify", str(a), str(b), str(c), "--public-key", PUBLIC])
    assert out.exit_code == 1, out.output


def test_export_of_an_unsigned_offline_tail_exits_4_with_the_verdict_in_the_pack(tmp_path):
    """The evidence pack carries the verdict and reason; export exits 4 as verify does, not 1."""
    path = tmp_path / "t.jsonl"
    _past_cadence(path)
    out = runner.invoke(app, ["timeline", "export", str(path), "--incident", "inc", "--format", "json",
                              "--public-key", PUBLIC])
    assert out.exit_code == 4, out.output
    verification = orjson.loads(out.stdout)["verification"]
    assert verification["verdict"] == "unsigned_offline_tail"
    assert "offline:host:43:d4e5f6" in verification["reason"]
    md = runner.invoke(app, ["timeline", "export", str(path), "--incident", "inc", "--public-key", PUBLIC])
    assert md.exit_code == 4
    assert "NOT FULLY PROVEN (unsigned offline tail)" in md.stdout


def test_export_across_files_names_the_unsigned_file_and_exits_4(tmp_path):
    """Two writers' files, one with an unsigned offline tail: the pack's verdict names that file; exit 4."""
    _past_cadence(tmp_path / "a.jsonl")
    write_signed(tmp_path / "b.jsonl", n=5, every=CADENCE)
    out = runner.invoke(app, ["timeline", "export", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"),
                              "--incident", "inc", "--format", "json", "--public-key", PUBLIC])
    assert out.exit_code == 4, out.output
    verification = orjson.loads(out.stdout)["verification"]
    assert verification["verdict"] == "unsigned_offline_tail"
    assert verification["reason"].startswith(str(tmp_path / "a.jsonl"))


def test_a_body_holding_kind_checkpoint_does_not_reset_the_unsigned_run_an_offline_command_counts(tmp_path):
    """Entries nesting kind `checkpoint` in their body are not checkpoints to an offline recorder counting the run."""
    from responder.settings import Settings

    path = tmp_path / "t.jsonl"
    write_signed(path, n=5, every=CADENCE)
    rec = Recorder(FileStore(path), writer="svc")
    for i in range(CADENCE + 1):
        rec.append("event.received", {"raw": {"kind": "checkpoint"}, "i": i})
    rec.close()
    offline = Recorder.offline(path, Settings(timeline_checkpoint_every=CADENCE))
    try:
        assert offline.unsigned_run() == CADENCE + 1
        assert offline.past_cadence()
    finally:
        offline.close()


def test_a_rewrite_behind_two_deleted_checkpoints_gets_exit_4_whose_reason_does_not_vouch_for_it(tmp_path):
    """A rewrite behind two deleted checkpoints exits 4, not 0, with a reason that does not vouch for the timeline."""
    path = tmp_path / "t.jsonl"
    docs = [orjson.loads(ln) for ln in write_signed(path, n=15, every=CADENCE)]
    cps = [i for i, d in enumerate(docs) if d["kind"] == "checkpoint"]  # seqs 5, 11, 17 (15 entries, 3 checkpoints)
    kept = [d for i, d in enumerate(docs) if i not in cps[1:]]  # seg 6-10 was signed by the deleted seq 11
    kept[7]["body"]["i"] = 999
    for d in kept[11:]:
        d["writer"] = "offline:host:42:a1b2c3"
    path.write_bytes(rehash(kept))
    code, body = _verify(path)
    assert code == 4, body
    reason = str(body["reason"])
    assert not reason.startswith("intact")
    assert "deleting checkpoints" in reason
    assert "archive" in reason


def test_timeline_sign_refuses_a_file_a_running_service_holds_and_writes_nothing(tmp_path, monkeypatch):
    """The service's recorder holds the file's lock: sign exits 3 naming the holder, the file as it was."""
    path = tmp_path / "t.jsonl"
    _past_cadence(path)
    before = path.read_bytes()
    monkeypatch.setenv("RESPONDER_TIMELINE_SIGNING_KEY", PRIVATE)
    held = Recorder(FileStore(path), writer="svc")
    try:
        out = runner.invoke(app, ["timeline", "sign", str(path)])
    finally:
        held.close()
    assert out.exit_code == 3, out.output
    assert path.read_bytes() == before


@pytest.mark.parametrize("foreign", ["unsigned", "other key"])
def test_timeline_sign_refuses_a_chain_its_key_did_not_sign(tmp_path, monkeypatch, foreign):
    """A timeline with no checkpoint, or checkpoints by an untrusted key: sign exits 1 and adds no checkpoint."""
    from responder.timeline.checkpoint import generate_keypair

    path = tmp_path / "t.jsonl"
    other, _ = generate_keypair()
    rec = Recorder(FileStore(path), writer="svc", signer=None if foreign == "unsigned" else Signer.from_text(other),
                   checkpoint_every=CADENCE)
    for i in range(3):
        rec.append("step.intent", {"i": i}, incident="inc")
    rec.close()
    before = path.read_bytes()
    monkeypatch.setenv("RESPONDER_TIMELINE_SIGNING_KEY", PRIVATE)
    out = runner.invoke(app, ["timeline", "sign", str(path)])
    assert out.exit_code == 1, out.output
    assert path.read_bytes() == before


def test_an_offline_recorder_reads_no_further_than_its_tail_when_that_holds_a_checkpoint(tmp_path, monkeypatch):
    """An offline recorder whose tail holds a checkpoint reads no further back to count the unsigned run."""
    from responder.settings import Settings
    from responder.timeline import resume as resume_module

    path = tmp_path / "t.jsonl"
    write_signed(path, n=12, every=CADENCE)
    _offline(path, 2)
    scanned: list[bytes] = []
    monkeypatch.setattr(resume_module, "is_checkpoint", lambda line: scanned.append(line) or False)
    offline = Recorder.offline(path, Settings(timeline_checkpoint_every=CADENCE))
    try:
        assert (offline.signed_on_disk, offline.unsigned_run(), scanned) == (True, 2, [])
    finally:
        offline.close()
