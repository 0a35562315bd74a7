"""The re-review: sign refuses an unproven tail, offline labels are checked, the cadence is carried past 256 KiB."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from responder.cli import app
from responder.settings import Settings
from responder.timeline import Recorder
from responder.timeline.checkpoint import Cadence
from tests.timeline_builders import (
    PRIVATE,
    Clock,
    crash,
    docs_of,
    no_timeline_env,  # noqa: F401 (the fixture every test here uses)
    rewritten_tail,
    service_recorder,
)
from tests.timeline_builders import verify_json as _verify

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("no_timeline_env")


def _two_writers(path: Path) -> None:
    """The repro: checkpoints deleted, an entry changed, the tail's writers alternated svc:1/svc:2."""
    rewritten_tail(path, lambda k: "svc:1" if k % 2 == 0 else "svc:2")


def test_sign_refuses_a_tail_verify_reports_unproven(tmp_path, monkeypatch):
    """Exit 4 unsigned_tail_two_writers: sign exits 1 with one line naming the verdict and why, writing nothing."""
    path = tmp_path / "t.jsonl"
    _two_writers(path)
    before = path.read_bytes()
    monkeypatch.setenv("RESPONDER_TIMELINE_SIGNING_KEY", PRIVATE)
    out = runner.invoke(app, ["timeline", "sign", str(path)])
    assert out.exit_code == 1, out.output
    [line] = out.stderr.splitlines()
    assert "verdict unsigned_tail_two_writers, not signed" in line
    assert "entry seq 6 is writer svc:2's" in line
    assert "--force" in line
    assert path.read_bytes() == before
    monkeypatch.delenv("RESPONDER_TIMELINE_SIGNING_KEY")
    assert _verify(path)[1]["verdict"] == "unsigned_tail_two_writers"


def test_sign_force_signs_an_unproven_tail_and_names_the_verdict_it_overrides(tmp_path, monkeypatch):
    """--force: exit 0, stderr and `overrode` name the verdict signed over; verify then exits 0, verified."""
    path = tmp_path / "t.jsonl"
    _two_writers(path)
    monkeypatch.setenv("RESPONDER_TIMELINE_SIGNING_KEY", PRIVATE)
    out = runner.invoke(app, ["timeline", "sign", str(path), "--force", "--json"])
    assert out.exit_code == 0, out.output
    assert "--force: signing over verdict unsigned_tail_two_writers" in out.stderr
    assert orjson.loads(out.stdout)["overrode"] == "unsigned_tail_two_writers"
    monkeypatch.delenv("RESPONDER_TIMELINE_SIGNING_KEY")
    assert _verify(path)[:1] == (0,)


@pytest.mark.parametrize(("label", "why"), [
    ("offline:x", "offline:x's, but its writer id is not the form an offline command writes"),
    ("offline:host:42:a1b2c3", "an offline command writes no event.received entry"),
], ids=["malformed-id", "service-kind"])
def test_a_tail_relabelled_offline_is_unproven(tmp_path, label, why):
    """The tampered tail relabelled `offline:x`, or a well-formed offline id over service kinds: exit 4, not 0."""
    path = tmp_path / "t.jsonl"
    rewritten_tail(path, lambda k: label)
    code, body = _verify(path)
    assert (code, body["verdict"]) == (4, "unsigned_tail_not_offline"), body
    assert f"entry seq 5 is labelled offline writer {label}'s" in str(body["reason"])
    assert why in str(body["reason"])


def _past_the_tail_read(path: Path) -> None:
    """A service (1000 entries or 10 s) checkpoints, writes 400 ~1 KiB entries and is killed: > 256 KiB unsigned."""
    clock = Clock()
    rec = service_recorder(path, clock)
    rec.append("event.received", {"i": -1})
    rec.checkpoint()
    for i in range(400):
        clock.now += 0.01
        rec.append("event.received", {"i": i, "pad": "x" * 1000})
    crash(rec)


def test_sign_keeps_the_cadence_of_a_checkpoint_beyond_the_tail_read(tmp_path, monkeypatch):
    """The repro: sign on a host set to 50000 / 3600 s signs the file's (1000, 10 s), its checkpoint 256 KiB back."""
    path = tmp_path / "t.jsonl"
    _past_the_tail_read(path)
    monkeypatch.setenv("RESPONDER_TIMELINE_SIGNING_KEY", PRIVATE)
    monkeypatch.setenv("RESPONDER_TIMELINE_CHECKPOINT_EVERY", "50000")
    monkeypatch.setenv("RESPONDER_TIMELINE_CHECKPOINT_INTERVAL", "3600")
    out = runner.invoke(app, ["timeline", "sign", str(path)])
    assert out.exit_code == 0, out.output
    last = [d["body"] for d in docs_of(path) if d["kind"] == "checkpoint"][-1]
    assert (last["every"], last["interval_ms"]) == (1000, 10000)


def test_an_offline_recorder_carries_the_cadence_found_beyond_the_tail_read(tmp_path):
    """An offline recorder without the key, its file's last checkpoint 256 KiB back: it carries that cadence."""
    path = tmp_path / "t.jsonl"
    _past_the_tail_read(path)
    rec = Recorder.offline(path, Settings(timeline_checkpoint_every=50000, timeline_checkpoint_interval=3600.0))
    try:
        assert (rec.cadence(), rec.tail_cadence) == (Cadence(1000, 10000), 1000)
    finally:
        rec.release()
