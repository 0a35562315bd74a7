"""`timeline verify --json` prints exactly one JSON document: one file's verdict, or every file's (and the fleet's) in
one object; a path it cannot read is in that document too, exit 3."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from responder.cli import app
from tests.timeline_builders import PUBLIC, write_signed

runner = CliRunner()


@pytest.fixture(autouse=True)
def _settings_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No RESPONDER_* settings but the ones a test sets."""
    for name in ("RESPONDER_CONFIG", "RESPONDER_TIMELINE_VERIFY_KEY", "RESPONDER_TIMELINE_ARCHIVE",
                 "RESPONDER_TIMELINE_WRITERS", "RESPONDER_TIMELINE_SIGNING_KEY"):
        monkeypatch.delenv(name, raising=False)


def _verify(*args: str) -> tuple[int, dict[str, object], str]:
    out = runner.invoke(app, ["timeline", "verify", *args, "--public-key", PUBLIC, "--json"])
    return out.exit_code, orjson.loads(out.stdout), out.stderr  # the whole stdout is one document


def test_a_missing_file_alone_is_a_json_document_with_its_error_and_exit_3(tmp_path: Path) -> None:
    """A missing path alone: `{ok: false, path, error}` on stdout (not only the line on stderr), exit 3."""
    missing = tmp_path / "missing.jsonl"
    code, doc, err = _verify(str(missing))
    assert code == 3, doc
    assert doc == {"ok": False, "path": str(missing),
                   "error": f"cannot read timeline {missing}: no such file or directory"}
    assert err.strip() == f"✗ cannot read timeline {missing}: no such file or directory"


def test_one_file_keeps_its_verdict_document(tmp_path: Path) -> None:
    """One file named alone: its verdict as before (ok, verdict, entries…), not wrapped."""
    write_signed(tmp_path / "a.jsonl")
    code, doc, _ = _verify(str(tmp_path / "a.jsonl"))
    assert code == 0, doc
    assert (doc["ok"], doc["path"], doc["verdict"]) == (True, str(tmp_path / "a.jsonl"), "verified")


def test_several_files_are_one_document_listing_each(tmp_path: Path) -> None:
    """Two files and a missing one: one document, `files` in the order named, the missing one with its error, exit 3."""
    write_signed(tmp_path / "a.jsonl")
    write_signed(tmp_path / "b.jsonl")
    missing = tmp_path / "missing.jsonl"
    code, doc, _ = _verify(str(tmp_path / "a.jsonl"), str(missing), str(tmp_path / "b.jsonl"))
    assert code == 3, doc
    assert doc["ok"] is False
    files = doc["files"]
    assert isinstance(files, list)
    assert [f["path"] for f in files] == [str(tmp_path / "a.jsonl"), str(missing), str(tmp_path / "b.jsonl")]
    assert [f["ok"] for f in files] == [True, False, True]
    assert files[1]["error"] == f"cannot read timeline {missing}: no such file or directory"


def test_a_directory_with_writers_is_one_document_with_the_fleet(tmp_path: Path) -> None:
    """A directory of writers' files and --writers: `{ok, files, anchors, fleet}`, one document, exit 0."""
    (tmp_path / "d").mkdir()
    write_signed(tmp_path / "d" / "a.jsonl")
    code, doc, _ = _verify(str(tmp_path / "d"), "--writers", "test")
    assert code == 0, doc
    assert doc["ok"] is True
    assert [f["path"] for f in doc["files"]] == [str(tmp_path / "d" / "a.jsonl")]  # type: ignore[union-attr]
    assert doc["anchors"] == []
    assert doc["fleet"]["ok"] is True  # type: ignore[index]


def test_the_writers_setting_wraps_one_file_as_the_option_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """RESPONDER_TIMELINE_WRITERS set: one file named alone is `{ok, files, anchors, fleet}`, as with --writers."""
    write_signed(tmp_path / "a.jsonl")
    monkeypatch.setenv("RESPONDER_TIMELINE_WRITERS", "test")
    code, doc, _ = _verify(str(tmp_path / "a.jsonl"))
    assert code == 0, doc
    assert set(doc) == {"ok", "files", "anchors", "fleet"}
