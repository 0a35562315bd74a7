"""`timeline verify --writers`: a fleet's missing or unexpected replica timelines, and each one's coverage."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from responder.cli import app
from responder.timeline import FileStore, Recorder
from responder.timeline.checkpoint import Signer
from responder.timeline.fleet_writers import replica
from tests.timeline_builders import PRIVATE, PUBLIC

runner = CliRunner()


@pytest.fixture(autouse=True)
def _settings_env(monkeypatch):
    """No RESPONDER_* settings but the ones a test sets."""
    for name in ("RESPONDER_CONFIG", "RESPONDER_TIMELINE_VERIFY_KEY", "RESPONDER_TIMELINE_ARCHIVE",
                 "RESPONDER_TIMELINE_WRITERS", "RESPONDER_TIMELINE_SIGNING_KEY"):
        monkeypatch.delenv(name, raising=False)


def _replica(path: Path, *writers: str, signed: bool = True) -> None:
    """One replica's file: a run of 3 entries per writer id (one per restart), each closed with a checkpoint."""
    for writer in writers:
        rec = Recorder(FileStore(path), writer=writer, signer=Signer.from_text(PRIVATE) if signed else None)
        for i in range(3):
            rec.append("step.intent", {"step": "operator", "i": i}, incident="inc")
        rec.close()


def _fleet(tmp_path: Path) -> Path:
    """A directory of three replicas' files; r1 restarted once (two pids)."""
    d = tmp_path / "fleet"
    d.mkdir()
    _replica(d / "r1.jsonl", "r1:100", "r1:101")
    _replica(d / "r2.jsonl", "r2:200")
    _replica(d / "r3.jsonl", "r3:300")
    return d


def _verify(*args: str) -> tuple[int, dict[str, object]]:
    out = runner.invoke(app, ["timeline", "verify", *args, "--public-key", PUBLIC, "--json"])
    fleet = orjson.loads(out.stdout).get("fleet", {})  # one document: the files' verdicts and the fleet's
    return out.exit_code, fleet


def test_every_expected_writer_found_verifies_with_each_ones_coverage(tmp_path):
    """--writers r1,r2,r3 over their files: exit 0, none missing or unexpected, each head signed by a checkpoint."""
    code, fleet = _verify(str(_fleet(tmp_path)), "--writers", "r1,r2,r3")
    assert code == 0, fleet
    assert (fleet["ok"], fleet["missing"], fleet["unexpected"]) == (True, [], [])
    by_name = {w["name"]: w for w in fleet["writers"]}
    assert sorted(by_name) == ["r1", "r2", "r3"]
    assert by_name["r1"]["last_seq"] == 7  # its second pid's checkpoint, after 3 + 1 + 3 entries
    assert all(w["signed"] and w["verified"] for w in fleet["writers"])


def test_a_deleted_replica_timeline_is_reported_missing_and_exits_1(tmp_path):
    """Failed before (no such check: the other files verified, exit 0): r2's file deleted is a missing writer."""
    d = _fleet(tmp_path)
    (d / "r2.jsonl").unlink()
    code, fleet = _verify(str(d), "--writers", "r1,r2,r3")
    assert code == 1
    assert fleet["missing"] == ["r2"]
    text = runner.invoke(app, ["timeline", "verify", str(d), "--public-key", PUBLIC, "--writers", "r1,r2,r3"])
    assert "expected writers with no timeline: r2" in text.stderr


def test_an_unknown_writers_timeline_is_reported_unexpected_and_exits_1(tmp_path):
    """A file of a writer not in the list (a rogue or decommissioned replica) is unexpected: exit 1."""
    d = _fleet(tmp_path)
    _replica(d / "rogue.jsonl", "r9:900")
    code, fleet = _verify(str(d), "--writers", "r1,r2,r3")
    assert code == 1
    assert fleet["unexpected"] == ["r9"]


def test_the_setting_gives_the_writers_when_the_option_is_absent(tmp_path, monkeypatch):
    """RESPONDER_TIMELINE_WRITERS (comma-separated) is the default of --writers."""
    d = _fleet(tmp_path)
    monkeypatch.setenv("RESPONDER_TIMELINE_WRITERS", "r1,r2,r3,r4")
    code, fleet = _verify(str(d))
    assert code == 1
    assert fleet["missing"] == ["r4"]


def test_without_a_list_verify_checks_no_writers(tmp_path):
    """No --writers and no setting: no fleet report, the files' verdicts alone (as before)."""
    code, fleet = _verify(str(_fleet(tmp_path)))
    assert (code, fleet) == (0, {})


def test_offline_writers_are_listed_not_unexpected_and_an_unsigned_head_is_shown(tmp_path):
    """An offline command's entries are not a replica; r2's own unsigned tail shows as not covered."""
    d = _fleet(tmp_path)
    _replica(d / "r1.jsonl", "offline:ops:1:abc123", signed=False)
    _replica(d / "r2.jsonl", "r2:201", signed=False)
    code, fleet = _verify(str(d), "--writers", "r1,r2,r3")
    assert code == 0, fleet
    assert fleet["offline_writers"] == ["offline:ops:1:abc123"]
    assert {w["name"]: w["signed"] for w in fleet["writers"]} == {"r1": True, "r2": False, "r3": True}
    text = runner.invoke(app, ["timeline", "verify", str(d), "--public-key", PUBLIC, "--writers", "r1,r2,r3"])
    assert "writer r2:" in text.stdout
    assert "NOT covered by a signed checkpoint" in text.stdout


def test_a_file_that_does_not_verify_still_names_its_replica(tmp_path):
    """A broken file is not a missing writer: its replica is found from the entries that parse, not verified."""
    d = _fleet(tmp_path)
    lines = (d / "r3.jsonl").read_bytes().splitlines()
    (d / "r3.jsonl").write_bytes(b"\n".join(lines[1:]) + b"\n")
    code, fleet = _verify(str(d), "--writers", "r1,r2,r3")
    assert code == 1
    assert fleet["missing"] == []
    assert {w["name"]: w["verified"] for w in fleet["writers"]}["r3"] is False


@pytest.mark.parametrize(("writer", "name"), [("pod-0:17", "pod-0"), ("test", "test"), ("a:b", "a:b"),
                                              ("offline:pod-0:17:ab12cd", None), ("fe80::1:17", "fe80::1"),
                                              ("offline:fe80::1:17:ab12cd", None)])
def test_a_writers_replica_is_the_host_of_host_pid(writer, name):
    """A writer's replica is the host of `host:pid`; an id without a numeric pid is its own; an offline one is none."""
    assert replica(writer) == name


def test_a_deleted_replicas_name_forged_in_another_files_unsigned_tail_is_still_missing(tmp_path):
    """r2's file deleted and one unsigned entry by "r2:999" appended to r1's file: r2 is missing, exit 1."""
    d = _fleet(tmp_path)
    (d / "r2.jsonl").unlink()
    _replica(d / "r1.jsonl", "r2:999", signed=False)  # what anyone who can write r1's file can append
    code, fleet = _verify(str(d), "--writers", "r1,r2,r3")
    assert code == 1, fleet
    assert fleet["missing"] == ["r2"]
    assert fleet["unsigned_only"] == ["r2"]
    text = runner.invoke(app, ["timeline", "verify", str(d), "--public-key", PUBLIC, "--writers", "r1,r2,r3"])
    assert "only unsigned entries of: r2" in text.stderr


def test_without_a_public_key_a_replica_is_found_by_any_of_its_entries(tmp_path):
    """No key, nothing is proven: a replica counts where any of its writer ids wrote (unsigned files included)."""
    d = tmp_path / "fleet"
    d.mkdir()
    _replica(d / "r1.jsonl", "r1:100", signed=False)
    out = runner.invoke(app, ["timeline", "verify", str(d), "--writers", "r1", "--json"])
    assert out.exit_code == 4, out.output  # the replica found; its file, without a key, unproven (chain_only)
    assert orjson.loads(out.stdout)["fleet"]["missing"] == []
