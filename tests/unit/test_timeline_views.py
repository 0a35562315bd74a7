"""`timeline show/export/verify` over hostile event text and over several writers' files."""

from __future__ import annotations

import orjson
import pytest
from typer.testing import CliRunner

from responder.cli import app
from responder.timeline import FileStore, Recorder
from responder.timeline.checkpoint import Signer
from tests.timeline_builders import (
    PRIVATE,
    PUBLIC,
    incident_timeline,
    no_timeline_env,  # noqa: F401 (the fixture every test here uses)
    signed_recorder,
)

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("no_timeline_env")
HOSTILE = "AKIA[/]\x1b[2J\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\\n## All clear | forged"


def _hostile_timeline(path):
    rec = incident_timeline(path)
    rec.append("event.received", {"event_id": "ev-3", "source": "guardduty", "type": HOSTILE})
    rec.append("incident.joined", {"event_id": "ev-3", "runbook": "rb@1", "group_key": "g"}, "inc-1")
    head = {"step": "s[/]", "actuator": "aws.iam.deactivate_access_key", "target": HOSTILE, "key": "k2"}
    rec.append("step.intent", {**head, "params": {"id": HOSTILE}}, "inc-1")
    rec.append("step.result", {**head, "status": "failed", "error": HOSTILE}, "inc-1")
    rec.close()


def test_show_prints_event_text_inert(tmp_path):
    """show renders alert text with markup and escape sequences as visible text: no crash, no raw ESC."""
    path = tmp_path / "t.jsonl"
    _hostile_timeline(path)
    out = runner.invoke(app, ["timeline", "show", str(path), "--incident", "inc-1"])
    assert out.exit_code == 0, out.output
    assert "\x1b" not in out.stdout
    assert "AKIA[/]" in out.stdout


def test_export_markdown_keeps_event_text_inside_its_cell(tmp_path):
    """The Markdown evidence pack cannot be given new headings, rows or escape sequences by alert text."""
    path = tmp_path / "t.jsonl"
    _hostile_timeline(path)
    out = runner.invoke(app, ["timeline", "export", str(path), "--incident", "inc-1", "--format", "md",
                              "--public-key", PUBLIC])
    assert out.exit_code == 0, out.output
    assert "\x1b" not in out.stdout
    assert not any(line.startswith("## All clear") for line in out.stdout.splitlines())


def _two_writers(tmp_path):
    a = signed_recorder(tmp_path / "a.jsonl", every=3)
    b = Recorder(FileStore(tmp_path / "b.jsonl"), writer="replica-b", signer=a.signer, checkpoint_every=3)
    for i in range(7):
        a.append("x", {"i": i}, "inc-1")
        b.append("y", {"i": i}, "inc-1")
    a.close()
    b.close()


def test_verify_applies_each_anchor_to_its_own_writers_file(tmp_path):
    """verify DIR --anchor (one writer's checkpoint) passes on an intact fleet and still catches that file's cut."""
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    _two_writers(fleet)
    last = (fleet / "a.jsonl").read_bytes().splitlines()[-1]
    anchor = tmp_path / "anchor.json"
    anchor.write_bytes(last + b"\n")
    args = ["timeline", "verify", str(fleet), "--public-key", PUBLIC, "--anchor", str(anchor)]
    ok = runner.invoke(app, args)
    assert ok.exit_code == 0, ok.output
    lines = (fleet / "a.jsonl").read_bytes().splitlines()
    (fleet / "a.jsonl").write_bytes(b"\n".join(lines[:4]) + b"\n")
    cut = runner.invoke(app, args)
    assert cut.exit_code == 1, cut.output


def test_verify_refuses_an_archive_it_cannot_compare(tmp_path):
    """verify DIR --archive with several writers says it cannot compare one archive, instead of skipping it."""
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    _two_writers(fleet)
    out = runner.invoke(app, ["timeline", "verify", str(fleet), "--public-key", PUBLIC, "--archive", "s3://b/p/"])
    assert out.exit_code != 0, out.output
    assert "archive" in out.output


def test_show_keeps_each_writers_order_when_its_clock_steps_back(tmp_path):
    """Merging writers never puts a file's step.result before its step.intent, whatever the wall clock said."""
    times = iter([0.0, 100.0, 50.0])  # the first read is the recorder's start
    a = Recorder(FileStore(tmp_path / "a.jsonl"), writer="replica-a", clock=lambda: next(times))
    a.append("step.intent", {"key": "k"}, "inc-1")
    a.append("step.result", {"key": "k", "status": "ok"}, "inc-1")  # NTP stepped the clock back
    a.close()
    b = Recorder(FileStore(tmp_path / "b.jsonl"), writer="replica-b", clock=lambda: 60.0)
    b.append("incident.joined", {"event_id": "e"}, "inc-1")
    b.close()
    out = runner.invoke(app, ["timeline", "show", str(tmp_path), "--incident", "inc-1", "--json"])
    assert out.exit_code == 0, out.output
    kinds = [e["kind"] for e in orjson.loads(out.stdout)["entries"] if e["writer"] == "replica-a"]
    assert kinds == ["step.intent", "step.result"]


@pytest.mark.parametrize("text", [b"not json", b'{"kind": "checkpoint"}', b"[1]",
                                  b'{"at":1,"body":[],"hash":"h","incident":null,"kind":"checkpoint","prev":"p",'
                                  b'"seq":"x","writer":"w"}'])
def test_a_malformed_anchor_is_a_clear_failure(tmp_path, text):
    """verify --anchor with a file that is not a checkpoint entry exits 1 with a reason, not a traceback."""
    path = tmp_path / "t.jsonl"
    rec = signed_recorder(path)
    rec.append("x", {})
    rec.close()
    anchor = tmp_path / "anchor.json"
    anchor.write_bytes(text)
    out = runner.invoke(app, ["timeline", "verify", str(path), "--anchor", str(anchor), "--json"])
    assert out.exit_code == 1, out.output
    assert "anchor" in orjson.loads(out.stdout)["reason"]


def test_an_anchor_no_writer_file_holds_fails(tmp_path):
    """A writer's file deleted from the fleet directory fails verify when the auditor holds that writer's anchor."""
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    _two_writers(fleet)
    anchor = tmp_path / "anchor.json"
    anchor.write_bytes((fleet / "b.jsonl").read_bytes().splitlines()[-1])
    (fleet / "b.jsonl").unlink()
    (fleet / "c.jsonl").write_bytes((fleet / "a.jsonl").read_bytes())  # and a copy of another writer in its place
    args = ["timeline", "verify", str(fleet), "--public-key", PUBLIC, "--anchor", str(anchor)]
    out = runner.invoke(app, args)
    assert out.exit_code == 1, out.output
    assert "replica-b" in out.output
    js = runner.invoke(app, [*args, "--json"])
    doc = orjson.loads(js.stdout)  # one document: the files' verdicts and the anchors no file holds
    assert doc["ok"] is False
    [orphan] = doc["anchors"]
    assert (orphan["ok"], orphan["path"], orphan["first_bad_seq"]) == (False, str(anchor), -1)


def test_an_unreachable_archive_is_a_clear_error(tmp_path, monkeypatch):
    """verify --archive against an S3 endpoint that refuses connections exits 3 with one line, no traceback."""
    path = tmp_path / "t.jsonl"
    rec = signed_recorder(path)
    rec.append("x", {})
    rec.close()
    monkeypatch.setenv("RESPONDER_AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # discard: nothing listens
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    out = runner.invoke(app, ["timeline", "verify", str(path), "--public-key", PUBLIC, "--archive", "s3://b/t/"])
    assert out.exit_code == 3, out.output
    assert "archive" in out.output
    assert isinstance(out.exception, SystemExit)  # an Exit, not an escaped botocore error


@pytest.mark.parametrize("given", ["inc", "zzz"])
def test_an_ambiguous_or_unknown_incident_across_writers_exits_3(tmp_path, given):
    """Across several writers' files, an ambiguous or unknown incident is refused as in one file, not shown empty."""
    rec = incident_timeline(tmp_path / "a.jsonl")
    rec.close()
    other = Recorder(FileStore(tmp_path / "b.jsonl"), writer="replica-b")
    other.append("step.intent", {"key": "k"}, "inc-3")
    other.close()
    out = runner.invoke(app, ["timeline", "show", str(tmp_path), "--incident", given])
    assert out.exit_code == 3, out.output


def test_an_anchor_is_not_given_to_a_file_whose_entry_body_names_its_writer(tmp_path):
    """A body naming a writer does not make its file that writer's; `verify DIR --anchor` of an intact fleet passes."""
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    _two_writers(fleet)
    b = Recorder(FileStore(fleet / "b.jsonl"), writer="replica-b")
    b.append("event.received", {"event_id": "e", "writer": "test"}, None)  # "test": a.jsonl's writer
    b.close()
    anchor = tmp_path / "anchor.json"
    anchor.write_bytes((fleet / "a.jsonl").read_bytes().splitlines()[-1])
    out = runner.invoke(app, ["timeline", "verify", str(fleet), "--public-key", PUBLIC, "--anchor", str(anchor)])
    assert out.exit_code == 0, out.output


def test_export_of_a_fleet_that_does_not_verify_keeps_the_merged_order(tmp_path):
    """A broken fleet's evidence pack lists the readable entries interleaved by time as `show` does, not by file."""
    ticks = iter(range(100))
    a = Recorder(FileStore(tmp_path / "a.jsonl"), writer="replica-a", clock=lambda: float(next(ticks)))
    b = Recorder(FileStore(tmp_path / "b.jsonl"), writer="replica-b", clock=lambda: float(next(ticks)))
    for i in range(3):
        a.append("step.intent", {"key": f"a{i}"}, "inc-1")
        b.append("step.intent", {"key": f"b{i}"}, "inc-1")
    a.close()
    b.close()
    lines = (tmp_path / "b.jsonl").read_bytes().replace(b'"key":"b2"', b'"key":"bX"')
    (tmp_path / "b.jsonl").write_bytes(lines)  # edited: b does not verify, but every line still parses
    shown = runner.invoke(app, ["timeline", "show", str(tmp_path), "--incident", "inc-1", "--json"])
    out = runner.invoke(app, ["timeline", "export", str(tmp_path), "--incident", "inc-1", "--format", "json"])
    assert out.exit_code == 1, out.output
    exported = [e["hash"] for e in orjson.loads(out.stdout)["entries"]]
    assert exported == [e["hash"] for e in orjson.loads(shown.stdout)["entries"]]


def test_export_names_a_covering_checkpoint_only_from_the_incidents_own_chain(tmp_path):
    """Across writers, another file's later checkpoint (a higher seq of its own chain) does not cover the incident."""
    a = Recorder(FileStore(tmp_path / "a.jsonl"), writer="replica-a")  # unsigned: nothing covers inc-1
    for i in range(3):
        a.append("step.intent", {"key": f"a{i}"}, "inc-1")
    a.close()
    b = signed_recorder(tmp_path / "b.jsonl", every=3)
    for i in range(7):
        b.append("x", {"i": i}, "inc-2")
    b.close()
    out = runner.invoke(app, ["timeline", "export", str(tmp_path), "--incident", "inc-1", "--format", "json"])
    assert out.exit_code == 4, out.output  # no key: links only, unproven (exit 0 before 2026-12-07)
    assert orjson.loads(out.stdout)["covering_checkpoint"] is None


def test_export_names_no_covering_checkpoint_when_one_writer_left_the_incident_unsigned(tmp_path):
    """An incident that moved between replicas is covered only if each writer's chain signs its entries there."""
    a = Recorder(FileStore(tmp_path / "a.jsonl"), writer="replica-a", clock=lambda: 1_800_000_000.0)
    for i in range(3):  # unsigned on replica-a: no checkpoint after them
        a.append("step.intent", {"key": f"a{i}"}, "inc-1")
    a.close()
    b = Recorder(FileStore(tmp_path / "b.jsonl"), writer="replica-b", signer=Signer.from_text(PRIVATE),
                 checkpoint_every=3, clock=lambda: 1_800_000_100.0)
    for i in range(3):  # then on replica-b, which signs them
        b.append("step.intent", {"key": f"b{i}"}, "inc-1")
    b.close()
    out = runner.invoke(app, ["timeline", "export", str(tmp_path), "--incident", "inc-1", "--format", "json"])
    assert out.exit_code == 4, out.output  # no key: links only, unproven (exit 0 before 2026-12-07)
    pack = orjson.loads(out.stdout)
    assert pack["entries"][-1]["body"] == {"key": "b2"}
    assert pack["covering_checkpoint"] is None


def test_a_copy_of_a_writers_file_beside_it_shows_and_exports_each_entry_once(tmp_path):
    """A directory holding a file and its copy (a backup): show and export list each of its entries once."""
    rec = incident_timeline(tmp_path / "a.jsonl")
    rec.close()
    (tmp_path / "a.backup.jsonl").write_bytes((tmp_path / "a.jsonl").read_bytes())
    shown = runner.invoke(app, ["timeline", "show", str(tmp_path), "--incident", "inc-1", "--json"])
    seqs = [e["seq"] for e in orjson.loads(shown.stdout)["entries"]]
    assert seqs == sorted(set(seqs)), seqs
    out = runner.invoke(app, ["timeline", "export", str(tmp_path), "--incident", "inc-1", "--format", "json",
                              "--public-key", PUBLIC])
    pack = orjson.loads(out.stdout)
    assert [len(a["attempts"]) for a in pack["actions"]] == [1]
    assert len(pack["entries"]) == len({e["hash"] for e in pack["entries"]})


def test_a_copy_edited_without_rehashing_is_shown_beside_the_original(tmp_path):
    """Two copies of an entry that differ but state one hash (one edited): the merged view shows both, not one."""
    rec = incident_timeline(tmp_path / "a.jsonl")
    rec.close()
    lines = (tmp_path / "a.jsonl").read_bytes().splitlines(keepends=True)
    edited = [orjson.loads(line) for line in lines]
    last = next(e for e in reversed(edited) if e.get("incident") == "inc-1")
    last["body"] = {**last["body"], "edited": "mallory"}
    (tmp_path / "b.copy.jsonl").write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in edited))
    shown = runner.invoke(app, ["timeline", "show", str(tmp_path), "--incident", "inc-1", "--json"])
    bodies = [e["body"] for e in orjson.loads(shown.stdout)["entries"] if e["hash"] == last["hash"]]
    assert len(bodies) == 2, bodies
    assert {"edited": "mallory"}.items() <= bodies[0].items() or {"edited": "mallory"}.items() <= bodies[1].items()
