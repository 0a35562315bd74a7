"""A timeline path given on the command line that is missing, unreadable or not a timeline is one line naming the file
and the reason, exit 3, the same for `timeline show|export|verify` and `models history`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from responder.cli.app import app
from responder.timeline import FileStore, Recorder, generate_keypair
from responder.timeline.checkpoint import Signer
from tests.timeline_builders import PRIVATE, PUBLIC

COMMANDS = {
    "show": lambda p: ["timeline", "show", str(p)],
    "export": lambda p: ["timeline", "export", str(p), "--incident", "abc"],
    "verify": lambda p: ["timeline", "verify", str(p)],
    "history": lambda p: ["models", "history", "fraud", "--timeline", str(p)],
    "postmortem": lambda p: ["timeline", "postmortem", "abc", "--timeline", str(p)],
    "anchor": lambda p: ["timeline", "anchor", str(p)],
    "sign": lambda p: ["timeline", "sign", str(p)],
}


@pytest.fixture(autouse=True)
def _settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RESPONDER_TIMELINE_PATH", "RESPONDER_TIMELINE_VERIFY_KEY", "RESPONDER_TIMELINE_ARCHIVE",
                 "RESPONDER_TIMELINE_WRITERS", "RESPONDER_CONFIG"):
        monkeypatch.delenv(name, raising=False)


def _refused(args: list[str], path: Path, reason: str) -> None:
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 3, out.output
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(f"✗ cannot read timeline {path}: "), lines[0]
    assert reason in lines[0]
    assert "Traceback" not in out.output


@pytest.mark.parametrize("command", COMMANDS)
def test_a_missing_path_is_one_line_and_exit_3(tmp_path, monkeypatch, command):
    """A missing timeline path prints `cannot read timeline PATH: no such file`, exits 3, and creates nothing."""
    monkeypatch.setenv("RESPONDER_TIMELINE_SIGNING_KEY", generate_keypair()[0])  # sign gets as far as the file
    path = tmp_path / "missing.jsonl"
    _refused(COMMANDS[command](path), path, "no such file")
    assert not path.exists()


@pytest.mark.parametrize("command", ["show", "history", "postmortem"])
def test_a_file_that_is_not_a_timeline_is_one_line_naming_it_and_exit_3(tmp_path, command):
    """A file with a line that is no timeline entry prints one line naming the file and the entry, and exits 3."""
    path = tmp_path / "bad.jsonl"
    path.write_text("garbage\n")
    _refused(COMMANDS[command](path), path, "entry 1: line 1 is not a timeline entry")


@pytest.mark.parametrize("command", ["show", "history"])
def test_an_unreadable_file_is_one_line_naming_it_and_exit_3(tmp_path, monkeypatch, command):
    """A file the process may not read (permission denied): the file and the reason, exit 3, no traceback."""
    path = tmp_path / "t.jsonl"
    path.write_text("")
    real = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    _refused(COMMANDS[command](path), path, "Permission denied")


@pytest.mark.parametrize("command", ["anchor", "export", "sign"])
def test_a_file_it_may_not_open_is_one_line_naming_it_and_exit_3(tmp_path, monkeypatch, command):
    """A timeline file that may not be opened prints `cannot read timeline PATH: Permission denied` and exits 3."""
    monkeypatch.setenv("RESPONDER_TIMELINE_SIGNING_KEY", generate_keypair()[0])
    path = tmp_path / "t.jsonl"
    path.write_text("")
    real = Path.open

    def open_(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_)
    _refused(COMMANDS[command](path), path, "Permission denied")


def test_history_of_a_directory_is_one_line_and_exit_3(tmp_path):
    """`models history --timeline DIR`: not a file (exit 1 before)."""
    _refused(COMMANDS["history"](tmp_path), tmp_path, "Is a directory")


def test_history_without_a_timeline_yet_is_empty(tmp_path, monkeypatch):
    """The configured timeline (no --timeline) that does not exist yet: no changes, exit 0, as before."""
    monkeypatch.setenv("RESPONDER_TIMELINE_PATH", str(tmp_path / "none-yet.jsonl"))
    out = CliRunner().invoke(app, ["models", "history", "fraud", "--json"])
    assert out.exit_code == 0, out.output
    assert '"changes":[]' in out.stdout


def _replica(path: Path, writer: str) -> Path:
    """One replica's file: 3 entries closed with a signed checkpoint."""
    rec = Recorder(FileStore(path), writer=writer, signer=Signer.from_text(PRIVATE))
    for i in range(3):
        rec.append("step.intent", {"i": i}, incident="inc")
    rec.close()
    return path


def _verify(*args: str) -> Result:
    return CliRunner().invoke(app, ["timeline", "verify", *args, "--public-key", PUBLIC])


def test_verify_checks_the_files_beside_a_missing_one_and_a_broken_one_is_exit_1(tmp_path):
    """`verify` checks the files beside a missing one, exiting 3, or 1 when one of them is tampered."""
    good, missing = _replica(tmp_path / "r1.jsonl", "r1:1"), tmp_path / "missing.jsonl"
    out = _verify(str(good), str(missing))
    assert out.exit_code == 3, out.output
    assert f"✓ {good}: 4 entries verify" in out.stdout
    assert f"✗ cannot read timeline {missing}: no such file or directory" in out.stderr
    tampered = _replica(tmp_path / "r2.jsonl", "r2:2")
    tampered.write_text(tampered.read_text().replace('{"i":1}', '{"i":7}'))
    out = _verify(str(missing), str(tampered))
    assert out.exit_code == 1, out.output
    assert f"✗ {tampered}: timeline does NOT verify at entry 1" in out.stderr
    assert f"✗ cannot read timeline {missing}" in out.stderr


def test_verify_an_anchor_of_a_missing_file_is_no_file_s_writer_exit_1(tmp_path):
    """`verify --anchor` for an anchor of a deleted file reports an anchor no file's writer signed, exit 1."""
    r1, r2 = _replica(tmp_path / "r1.jsonl", "r1:1"), _replica(tmp_path / "r2.jsonl", "r2:2")
    anchor = tmp_path / "a2.json"
    anchor.write_text(CliRunner().invoke(app, ["timeline", "anchor", str(r2)]).stdout)
    r2.unlink()
    out = _verify(str(r1), str(r2), "--anchor", str(anchor))
    assert out.exit_code == 1, out.output
    assert "no timeline file holds entries of writer 'r2:2'" in out.stderr
    assert f"✓ {r1}" in out.stdout
