"""A tail `verify` reports unproven stays unproven once a start (or any checkpoint) signs it, until acknowledged."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from responder.cli import app
from responder.timeline import FileStore, Recorder
from responder.timeline.checkpoint import Ack, Signer
from tests.timeline_builders import (
    PRIVATE,
    PUBLIC,
    Clock,
    append_events,
    crash,
    docs_of,
    no_timeline_env,  # noqa: F401 (the fixture every test here uses)
    rehash,
    rewritten_tail,
    service_recorder,
)
from tests.timeline_builders import keyed_start as _restart
from tests.timeline_builders import verify_json as _verify

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("no_timeline_env")


def _sign(path: Path, monkeypatch: pytest.MonkeyPatch, *extra: str) -> object:
    monkeypatch.setenv("RESPONDER_TIMELINE_SIGNING_KEY", PRIVATE)
    out = runner.invoke(app, ["timeline", "sign", str(path), *extra])
    monkeypatch.delenv("RESPONDER_TIMELINE_SIGNING_KEY")
    return out


@pytest.mark.parametrize(("label", "verdict"), [
    (lambda k: "svc:1" if k % 2 == 0 else "svc:2", "unsigned_tail_two_writers"),
    (lambda k: "svc:1", "unsigned_tail_past_interval"),
    (lambda k: "offline:x", "unsigned_tail_not_offline"),
], ids=["two-writers", "past-interval", "not-offline"])
def test_a_start_signing_an_unproven_tail_leaves_it_unproven(tmp_path, label, verdict):
    """The red-team hole: a service start signs a tail verify calls unproven; verify still exits 4 naming it."""
    path = tmp_path / "t.jsonl"
    rewritten_tail(path, label)
    assert _verify(path)[1]["verdict"] == verdict
    _restart(path)
    code, body = _verify(path)
    assert (code, body["verdict"]) == (4, "signed_unproven_tail"), body
    [seg] = body["signed_unproven"]
    assert (seg["verdict"], seg["first_seq"], seg["last_seq"], seg["acknowledged_by"]) == (verdict, 5, 20, None)
    assert seg["signed_by"] == 21
    assert "seq 5-20" in str(body["reason"])
    assert verdict in str(body["reason"])


def test_a_crash_tail_signed_by_the_next_start_still_verifies(tmp_path):
    """A crash's tail, one writer within its interval, signed by the next start: verified, exit 0, nothing flagged."""
    path = tmp_path / "t.jsonl"
    clock = Clock()
    rec = service_recorder(path, clock)
    append_events(rec, clock, 7)
    rec.flush_sync()
    rec.store.close()
    _restart(path)
    code, body = _verify(path)
    assert (code, body["verdict"], body["signed_unproven"]) == (0, "verified", []), body


def test_sign_force_acknowledges_a_signed_unproven_tail(tmp_path, monkeypatch):
    """`timeline sign --force --by` after a start signed the tail: a signed acknowledgement; verify exits 0."""
    path = tmp_path / "t.jsonl"
    rewritten_tail(path, lambda k: "svc:1" if k % 2 == 0 else "svc:2")
    _restart(path)
    plain = _sign(path, monkeypatch)
    assert plain.exit_code == 0, plain.output
    assert "still unproven" in plain.stderr
    assert _verify(path)[1]["verdict"] == "signed_unproven_tail"
    out = _sign(path, monkeypatch, "--force", "--by", "alice", "--json")
    assert out.exit_code == 0, out.output
    assert orjson.loads(out.stdout)["overrode"] == "signed_unproven_tail"
    last = docs_of(path)[-1]
    assert (last["kind"], last["body"]["v"], last["body"]["ack_by"]) == ("checkpoint", 3, "alice")
    assert last["body"]["acknowledges"] == [[5, 20]]
    code, body = _verify(path)
    assert (code, body["verdict"]) == (0, "verified"), body
    [seg] = body["signed_unproven"]
    assert (seg["acknowledged_by"], seg["ack_by"]) == (last["seq"], "alice")


def test_sign_force_on_an_unproven_tail_signs_and_acknowledges_it_at_once(tmp_path, monkeypatch):
    """`sign --force` over an unsigned unproven tail writes one version-3 checkpoint acknowledging that tail."""
    path = tmp_path / "t.jsonl"
    rewritten_tail(path, lambda k: "svc:1")
    out = _sign(path, monkeypatch, "--force", "--by", "bob")
    assert out.exit_code == 0, out.output
    assert docs_of(path)[-1]["body"]["acknowledges"] == [[5, 20]]
    code, body = _verify(path)
    assert (code, body["verdict"]) == (0, "verified"), body
    assert body["signed_unproven"][0]["verdict"] == "unsigned_tail_past_interval"


def test_an_acknowledgement_body_without_a_valid_signature_fails(tmp_path):
    """A start's checkpoint rewritten as version 3 acknowledging the run, without the key: signature fails, exit 1."""
    path = tmp_path / "t.jsonl"
    rewritten_tail(path, lambda k: "svc:1" if k % 2 == 0 else "svc:2")
    _restart(path)
    docs = docs_of(path)
    cp = next(d for d in docs if d["seq"] == 21)
    cp["body"] = {**cp["body"], "v": 3, "ack_by": "mallory", "acknowledges": [[5, 20]]}
    path.write_bytes(rehash(docs))
    code, body = _verify(path)
    assert code == 1, body
    assert "checkpoint signature is invalid" in str(body["reason"])


def test_a_signed_acknowledgement_of_other_runs_acknowledges_nothing_else(tmp_path):
    """A version-3 checkpoint (valid key) naming a run other than the flagged one: the flagged run stays unproven."""
    path = tmp_path / "t.jsonl"
    rewritten_tail(path, lambda k: "svc:1" if k % 2 == 0 else "svc:2")
    _restart(path)
    rec = service_recorder(path, Clock(), "op")
    rec.checkpoint(Ack("alice", ((5, 19), (6, 20))))
    rec.close()
    code, body = _verify(path)
    assert (code, body["verdict"]) == (4, "signed_unproven_tail"), body
    assert [(s["first_seq"], s["acknowledged_by"]) for s in body["signed_unproven"]] == [(5, None)]


def test_verify_prints_an_acknowledged_run(tmp_path, monkeypatch):
    """Text output after an acknowledgement: exit 0 and one line naming the run, its verdict and who acknowledged it."""
    path = tmp_path / "t.jsonl"
    rewritten_tail(path, lambda k: "svc:1")
    assert _sign(path, monkeypatch, "--force", "--by", "carol").exit_code == 0
    out = runner.invoke(app, ["timeline", "verify", str(path), "--public-key", PUBLIC])
    assert out.exit_code == 0, out.output
    assert "acknowledged: seq 5-20 (unsigned_tail_past_interval, signed by checkpoint seq 21) by carol" in out.stdout


def test_sign_force_needs_a_name_of_at_most_200_characters(tmp_path, monkeypatch):
    """`--by` of 201 characters: exit 3 naming the limit, nothing written."""
    path = tmp_path / "t.jsonl"
    rewritten_tail(path, lambda k: "svc:1")
    before = path.read_bytes()
    out = _sign(path, monkeypatch, "--force", "--by", "x" * 201)
    assert out.exit_code == 3, out.output
    assert "--by must be 1 to 200 characters" in out.stderr
    assert path.read_bytes() == before


def test_a_whole_file_forged_without_checkpoints_stays_unproven_after_a_start(tmp_path):
    """A file replaced by a forged chain of two writers, no checkpoint, then a keyed start: exit 4, not verified."""
    path = tmp_path / "t.jsonl"
    rewritten_tail(path, lambda k: "svc:1" if k % 2 == 0 else "svc:2")
    path.write_bytes(rehash([d for d in docs_of(path) if d["kind"] != "checkpoint"]))
    assert _verify(path)[0] == 1  # no signed checkpoint
    _restart(path)
    code, body = _verify(path)
    assert (code, body["verdict"]) == (4, "signed_unproven_tail"), body
    [seg] = body["signed_unproven"]
    assert (seg["verdict"], seg["first_seq"], seg["last_seq"]) == ("unsigned_tail_two_writers", 0, 19)


def test_a_new_services_first_run_signed_by_its_first_checkpoint_verifies(tmp_path):
    """A service's first entries, signed by its first checkpoint (or a restart's after a crash): verified, exit 0."""
    path = tmp_path / "t.jsonl"
    clock = Clock()
    rec = service_recorder(path, clock, every=5)
    append_events(rec, clock, 3)
    crash(rec)
    _restart(path)
    code, body = _verify(path)
    assert (code, body["verdict"], body["signed_unproven"]) == (0, "verified", []), body


@pytest.mark.parametrize("field", ["ack_by", "acknowledges"])
def test_an_acknowledgements_fields_are_signed(tmp_path, monkeypatch, field):
    """A genuine version-3 checkpoint whose ack_by or acknowledges is edited and rehashed: signature fails, exit 1."""
    path = tmp_path / "t.jsonl"
    rewritten_tail(path, lambda k: "svc:1" if k % 2 == 0 else "svc:2")
    _restart(path)
    assert _sign(path, monkeypatch, "--force", "--by", "alice").exit_code == 0
    docs = docs_of(path)
    docs[-1]["body"][field] = "mallory" if field == "ack_by" else [[5, 20], [0, 4]]
    path.write_bytes(rehash(docs))
    code, body = _verify(path)
    assert code == 1, body
    assert "checkpoint signature is invalid" in str(body["reason"])


def _stamp(rng: random.Random, when: datetime) -> str:
    """`when` as a recorder stamps it mostly, else in another form, unreadable, or with one field out of range."""
    text = when.isoformat(timespec="microseconds")
    return rng.choice([text] * 8 + [
        when.isoformat(), when.astimezone(timezone(timedelta(hours=-5))).isoformat(timespec="microseconds"),
        "not a time", "", text.replace("T", " "), text[:17] + "75" + text[19:], text[:5] + "13" + text[7:],
        text[:11] + "24" + text[13:], text[:-1], text + "0"])


def test_the_one_writer_fast_path_agrees_with_the_entry_by_entry_rules(monkeypatch):
    """Random runs (writers, offline labels, odd and unreadable times, midnight): the fast path hides no verdict."""
    from responder.timeline import tail as rules

    rng = random.Random(7)
    runs = []
    for _ in range(3000):
        start = datetime(2027, 12, 31, 23, 59, 50, tzinfo=UTC) if rng.random() < 0.2 else datetime(
            2027, 1, 15, 8, tzinfo=UTC)
        writers = rng.choice([["svc:1"], ["svc:1"], ["svc:1", "svc:2"], ["offline:x"], ["offline:h:1:a1b2c3"]])
        run = []
        for _ in range(rng.randint(1, 6)):
            when = start + timedelta(seconds=rng.choice([1.5, 19.9, 21.0, 300.0]) * rng.random())
            run.append((rng.choice(writers), _stamp(rng, when), "undo.intent", None))
        runs.append(run)
    fast = [rules.tail_problem(run, 0, 10_000) for run in runs]
    monkeypatch.setattr(rules, "_plainly_live", lambda *_: False)
    assert fast == [rules.tail_problem(run, 0, 10_000) for run in runs]
    assert {f[0] for f in fast if f is not None} == {
        "unsigned_tail_past_interval", "unsigned_tail_two_writers", "unsigned_tail_not_offline"}


@pytest.mark.parametrize(("writers", "verdict"), [
    (["svc:1", "svc:2", "svc:1"], "unsigned_tail_two_writers"), (["offline:x"] * 3, "unsigned_tail_not_offline")],
    ids=["two-writers", "offline-label"])
def test_a_run_within_the_interval_is_still_judged_for_its_writers(writers, verdict):
    """Times 1 s apart (the fast path's case) but two writers, or a bad offline label: the verdict is still given."""
    from responder.timeline.tail import tail_problem

    start = datetime(2027, 1, 15, 8, tzinfo=UTC)
    run = [(w, (start + timedelta(seconds=i)).isoformat(timespec="microseconds"), "event.received", None)
           for i, w in enumerate(writers)]
    assert tail_problem(run, 0, 10_000)[0] == verdict


def test_a_crash_before_the_first_checkpoint_signed_by_a_restart_with_a_shorter_interval_verifies(tmp_path):
    """A new service (interval 60 s) killed before its first checkpoint, restarted with 10 s: verified, exit 0."""
    path = tmp_path / "t.jsonl"
    clock = Clock()
    rec = Recorder(FileStore(path), "svc:1", signer=Signer.from_text(PRIVATE), checkpoint_interval=60.0, clock=clock)
    append_events(rec, clock, 15, step=3.0)
    crash(rec)
    _restart(path)
    code, body = _verify(path)
    assert (code, body["verdict"], body["signed_unproven"]) == (0, "verified", []), body


def test_a_time_of_two_stamps_back_to_back_is_no_readable_time_on_the_fast_path_too():
    """An `at` of two recorder stamps end to end (each matched, together 64 characters): past_interval, not live."""
    from responder.timeline.tail import tail_problem

    stamp = "2027-01-15T08:00:00.000000+00:00"
    run = [("svc:1", at, "event.received", None) for at in (stamp, stamp + stamp, stamp)]
    assert tail_problem(run, 0, 10_000) == (
        "unsigned_tail_past_interval", 1, "entry seq 1 of the unsigned tail has no readable time")
