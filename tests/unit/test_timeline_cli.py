"""`responder timeline keygen|verify|show|export` from the command line."""

from __future__ import annotations

import orjson
import pytest
from typer.testing import CliRunner

from responder.cli import app
from responder.timeline import FileStore
from tests.timeline_builders import (
    PUBLIC,
    incident_timeline,
    no_timeline_env,  # noqa: F401 (the fixture every test here uses)
    rehash,
    write_signed,
)

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("no_timeline_env")


def test_keygen_prints_a_usable_pair(tmp_path, monkeypatch):
    """keygen prints both settings; a timeline signed with the private key verifies with the public one."""
    out = runner.invoke(app, ["timeline", "keygen"])
    assert out.exit_code == 0
    pairs = dict(line.split("=", 1) for line in out.stdout.splitlines() if line.startswith("RESPONDER_"))
    monkeypatch.setenv("RESPONDER_TIMELINE_VERIFY_KEY", pairs["RESPONDER_TIMELINE_VERIFY_KEY"])
    from responder.timeline.checkpoint import Signer
    from tests.timeline_builders import signed_recorder

    rec = signed_recorder(tmp_path / "t.jsonl")
    rec.signer = Signer.from_text(pairs["RESPONDER_TIMELINE_SIGNING_KEY"])
    rec.append("x", {})
    rec.close()
    ok = runner.invoke(app, ["timeline", "verify", str(tmp_path / "t.jsonl"), "--json"])
    assert ok.exit_code == 0, ok.output
    assert orjson.loads(ok.stdout)["signatures_checked"] is True


def test_verify_checks_signatures_and_anchor(tmp_path):
    """verify with --public-key and --anchor passes on the intact file and names seq 12 after a cut."""
    path = tmp_path / "t.jsonl"
    lines = write_signed(path, n=20)
    anchor = tmp_path / "anchor.json"
    anchor.write_bytes(lines[-1] + b"\n")
    args = ["timeline", "verify", str(path), "--public-key", PUBLIC, "--anchor", str(anchor), "--json"]
    ok = runner.invoke(app, args)
    assert ok.exit_code == 0, ok.output
    assert orjson.loads(ok.stdout)["checkpoints"] == 4
    path.write_bytes(b"\n".join(lines[:12]) + b"\n")
    bad = runner.invoke(app, args)
    assert bad.exit_code == 1
    assert orjson.loads(bad.stdout)["first_bad_seq"] == 12


def test_anchor_prints_the_latest_checkpoint(tmp_path):
    """`timeline anchor` prints the last checkpoint line, which `verify --anchor` accepts."""
    path = tmp_path / "t.jsonl"
    lines = write_signed(path, n=7)
    out = runner.invoke(app, ["timeline", "anchor", str(path)])
    assert out.exit_code == 0
    assert out.stdout.strip().encode() == lines[-1]
    (tmp_path / "a.json").write_text(out.stdout)
    args = ["timeline", "verify", str(path), "--public-key", PUBLIC, "--anchor", str(tmp_path / "a.json")]
    ok = runner.invoke(app, args)
    assert ok.exit_code == 0, ok.output


def test_show_incident_includes_the_events_that_fed_it(tmp_path):
    """show --incident lists the incident's entries and its event.received/matched, not other incidents'."""
    rec = incident_timeline(tmp_path / "t.jsonl")
    rec.close()
    out = runner.invoke(app, ["timeline", "show", str(tmp_path / "t.jsonl"), "--incident", "inc-1", "--json"])
    assert out.exit_code == 0
    kinds = [e["kind"] for e in orjson.loads(out.stdout)["entries"]]
    assert kinds == ["event.received", "event.matched", "incident.opened", "step.intent", "step.result"]


def test_show_and_export_name_each_entrys_trace(tmp_path):
    """Entries recorded under a trace stamp show it in `show` (shortened) and in full in the Markdown export."""
    from responder.timeline.recorder import Recorder
    from responder.tracing import stamped

    rec = Recorder(FileStore(tmp_path / "t.jsonl"))
    with stamped("a" * 32):
        rec.append("incident.opened", {"event_id": "ev-1", "runbook": "rb@1"}, "inc-1")
    with stamped("b" * 32, "a" * 32):
        rec.append("approval.decided", {"step": "s", "decision": "approve"}, "inc-1")
    rec.close()
    out = runner.invoke(app, ["timeline", "show", str(tmp_path / "t.jsonl"), "--incident", "inc-1"],
                        env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "aaaaaaaa" in out.stdout
    assert "bbbbbbbb←aaaaaaaa" in out.stdout
    md = runner.invoke(app, ["timeline", "export", str(tmp_path / "t.jsonl"), "--incident", "inc-1"])
    assert f"| `{'b' * 32}` ← `{'a' * 32}` |" in md.stdout


def test_export_json_evidence_pack(tmp_path):
    """export --format json holds the event, the decisions, the action with params, result, duration, verdict."""
    rec = incident_timeline(tmp_path / "t.jsonl")
    rec.close()
    out = runner.invoke(app, ["timeline", "export", str(tmp_path / "t.jsonl"), "--incident", "inc-1",
                              "--format", "json", "--public-key", PUBLIC])
    assert out.exit_code == 0, out.output
    pack = orjson.loads(out.stdout)
    assert pack["verification"]["ok"] is True
    assert pack["verification"]["signatures_checked"] is True
    assert [e["event_id"] for e in pack["events"]] == ["ev-1"]
    assert [d["kind"] for d in pack["decisions"]] == ["event.matched", "incident.opened"]
    [action] = pack["actions"]
    assert action["params"] == {"user_name": "u", "access_key_id": "AKIAEXAMPLE"}
    [attempt] = action["attempts"]
    assert (attempt["status"], attempt["duration_ms"], attempt["prior"]) == ("ok", 12.5, {"status": "Active"})
    assert attempt["elapsed_ms"] >= 0
    assert pack["covering_checkpoint"]["kind"] == "checkpoint"


def test_export_markdown_reports_a_broken_chain(tmp_path):
    """export --format md writes a report; on a tampered file it says NOT VERIFIED and exits 1."""
    path = tmp_path / "t.jsonl"
    rec = incident_timeline(path)
    rec.close()
    md = tmp_path / "pack.md"
    ok = runner.invoke(app, ["timeline", "export", str(path), "--incident", "inc-1", "--out", str(md),
                             "--public-key", PUBLIC])
    assert ok.exit_code == 0, ok.output
    text = md.read_text()
    assert "Timeline verification: VERIFIED" in text
    assert "aws.iam.deactivate_access_key" in text
    assert "| 12.5 |" in text
    path.write_bytes(path.read_bytes().replace(b'"status":"ok"', b'"status":"failed"'))
    bad = runner.invoke(app, ["timeline", "export", str(path), "--incident", "inc-1"])
    assert bad.exit_code == 1
    assert "NOT VERIFIED at entry 5" in bad.stdout


def test_verify_accepts_rotated_keys(tmp_path):
    """A chain signed first with one key, then another, verifies when both are trusted, not with the new one only."""
    from responder.timeline.checkpoint import Signer, generate_keypair
    from tests.timeline_builders import signed_recorder

    new_private, new_public = generate_keypair()
    path = tmp_path / "t.jsonl"
    rec = signed_recorder(path, every=2)
    for i in range(4):
        if i == 2:
            rec.signer = Signer.from_text(new_private)
        rec.append("x", {"i": i})
    rec.close()
    both = runner.invoke(app, ["timeline", "verify", str(path), "--public-key", f"{PUBLIC},{new_public}"])
    assert both.exit_code == 0, both.output
    only_new = runner.invoke(app, ["timeline", "verify", str(path), "--public-key", new_public, "--json"])
    assert only_new.exit_code == 1
    assert orjson.loads(only_new.stdout)["first_bad_seq"] == 2


def test_fleet_writers_verify_together_and_merge_per_incident(tmp_path):
    """A directory of writers verifies file by file; show merges one incident across writers; one bad file fails."""
    from responder.timeline.recorder import Recorder
    from responder.timeline.store import FileStore

    incident_timeline(tmp_path / "a.jsonl").close()
    second = Recorder(FileStore(tmp_path / "b.jsonl"), writer="replica-b")
    second.append("incident.joined", {"event_id": "ev-9", "runbook": "rb@1", "group_key": "g",
                                      "event_time": "2026-11-25T10:05:00+00:00"}, "inc-1")
    second.close()
    ok = runner.invoke(app, ["timeline", "verify", str(tmp_path)])
    assert ok.exit_code == 4, ok.output  # no key: both chains hold, neither is proven (exit 0 before 2026-12-07)
    assert ok.stderr.count("NOT proven: no public key") == 2
    out = runner.invoke(app, ["timeline", "show", str(tmp_path), "--incident", "inc-1", "--json"])
    shown = orjson.loads(out.stdout)["entries"]
    assert {e["writer"] for e in shown} == {"replica-b", "test"}
    assert [e["kind"] for e in shown][-1] == "incident.joined"
    (tmp_path / "b.jsonl").write_bytes((tmp_path / "b.jsonl").read_bytes().replace(b"ev-9", b"ev-8"))
    bad = runner.invoke(app, ["timeline", "verify", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")])
    assert bad.exit_code == 1
    assert "b.jsonl" in bad.output


def test_incident_ids_work_as_unique_prefixes(tmp_path):
    """show/export take a unique prefix of an incident id; an ambiguous or unknown one exits 3 with candidates."""
    rec = incident_timeline(tmp_path / "t.jsonl")
    rec.append("step.intent", {"step": "y", "key": "k9"}, "job-77")
    rec.close()
    path = str(tmp_path / "t.jsonl")
    shown = runner.invoke(app, ["timeline", "show", path, "--incident", "job", "--json"])
    assert shown.exit_code == 0, shown.output
    assert orjson.loads(shown.stdout)["incident"] == "job-77"
    exported = runner.invoke(app, ["timeline", "export", path, "--incident", "jo", "--format", "json",
                                   "--public-key", PUBLIC])
    assert exported.exit_code == 0, exported.output
    ambiguous = runner.invoke(app, ["timeline", "show", path, "--incident", "inc"])
    assert ambiguous.exit_code == 3
    assert "inc-1, inc-2" in ambiguous.stderr
    unknown = runner.invoke(app, ["undo", "zzz", "--timeline", path])
    assert unknown.exit_code == 3
    assert "no incident 'zzz'" in unknown.stderr
    assert "job-77" in unknown.stderr


def _rewrite_without_checkpoints(lines: list[bytes]) -> bytes:
    """Edit entry 3, delete every checkpoint line, renumber and rehash."""
    docs = [orjson.loads(ln) for ln in lines if orjson.loads(ln)["kind"] != "checkpoint"]
    docs[3]["body"]["i"] = 999
    return rehash(docs)


def test_a_rewritten_timeline_without_checkpoints_does_not_verify_with_a_key(tmp_path):
    """The reproduction: edit, delete every checkpoint, recompute seq/prev/hash: verify --public-key exits 1."""
    path = tmp_path / "t.jsonl"
    path.write_bytes(_rewrite_without_checkpoints(write_signed(path, n=20, every=5)))
    assert runner.invoke(app, ["timeline", "verify", str(path)]).exit_code == 4  # links alone: chain_only, unproven
    result = runner.invoke(app, ["timeline", "verify", str(path), "--public-key", PUBLIC, "--json"])
    assert result.exit_code == 1, result.output
    assert "checkpoint" in orjson.loads(result.stdout)["reason"]


def test_an_unsigned_run_longer_than_the_cadence_fails(tmp_path, monkeypatch):
    """Deleting checkpoints in the middle (not the last) leaves a run longer than the cadence: it fails there."""
    path = tmp_path / "t.jsonl"
    docs = [orjson.loads(ln) for ln in write_signed(path, n=20, every=5)]
    cps = [i for i, d in enumerate(docs) if d["kind"] == "checkpoint"]
    path.write_bytes(rehash([d for i, d in enumerate(docs) if i not in cps[:2]]))
    monkeypatch.setenv("RESPONDER_TIMELINE_CHECKPOINT_EVERY", "5")
    result = runner.invoke(app, ["timeline", "verify", str(path), "--public-key", PUBLIC, "--json"])
    assert result.exit_code == 1
    assert orjson.loads(result.stdout)["first_bad_seq"] == 5
    assert "cadence" in orjson.loads(result.stdout)["reason"]


@pytest.mark.parametrize(("name", "mutate"), [
    ("blank line", lambda raw: raw.replace(b"\n", b"\n\n", 1)),
    ("CRLF", lambda raw: raw.replace(b"\n", b"\r\n", 1)),
    ("leading space", lambda raw: b" " + raw),
    ("re-spaced JSON", lambda raw: raw.replace(b'{"at":', b'{ "at":', 1)),
])
def test_non_canonical_lines_fail(tmp_path, name, mutate):
    """A blank line, a CRLF, a leading space or re-spaced JSON is not the canonical bytes: verify exits 1."""
    path = tmp_path / "t.jsonl"
    write_signed(path, n=6, every=5)
    path.write_bytes(mutate(path.read_bytes()))
    result = runner.invoke(app, ["timeline", "verify", str(path), "--public-key", PUBLIC, "--json"])
    assert result.exit_code == 1, name
    assert "canonical" in orjson.loads(result.stdout)["reason"]


def test_offline_undo_of_an_incident_named_only_by_a_refused_decision_exits_3(tmp_path):
    """Offline `undo` of an incident named only by a refused decision or operator request exits 3 saying so."""
    rec = incident_timeline(tmp_path / "t.jsonl")
    rec.append("approval.rejected", {"reason": "unknown signing key id 'x'", "key_id": "x"}, "inc-elsewhere")
    rec.append("operator.refused", {"reason": "fleet store unreachable"}, "inc-elsewhere")
    rec.close()
    result = runner.invoke(app, ["undo", "inc-elsewhere", "--timeline", str(tmp_path / "t.jsonl")])
    assert result.exit_code == 3, result.output
    assert "another replica" in result.stderr


def test_an_operator_request_naming_a_prefix_does_not_make_the_prefix_an_incident(tmp_path):
    """An operator request naming a prefix such as `job` does not make the prefix an incident; it names job-77."""
    rec = incident_timeline(tmp_path / "t.jsonl")
    rec.append("step.intent", {"step": "y", "key": "k9"}, "job-77")
    rec.append("operator.requested", {"id": "r1", "action": "undo", "by": "ann", "key_id": "k", "args": {}}, "job")
    rec.append("operator.completed", {"id": "r1", "action": "undo", "ok": False, "outcomes": [],
                                      "error": "incident 'job' is not on this service's timeline"}, "job")
    rec.close()
    shown = runner.invoke(app, ["timeline", "show", str(tmp_path / "t.jsonl"), "--incident", "job", "--json"])
    assert shown.exit_code == 0, shown.output
    assert orjson.loads(shown.stdout)["incident"] == "job-77"
