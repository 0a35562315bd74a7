"""An offline `models` command whose timeline is held by another writer, or cannot be opened for writing, stops
before it acts with one line saying what to do, exit 3 (a bad setting or argument)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from responder.cli import app
from responder.timeline import FileStore

COMMANDS = [["models", "quarantine", "fraud", "v1", "--reason", "test"], ["models", "switch", "fraud", "v1"],
            ["models", "rollback", "fraud", "--from", "v2"]]


@pytest.fixture(autouse=True)
def _settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "registry").mkdir()
    monkeypatch.setenv("RESPONDER_MODEL_REGISTRY", str(tmp_path / "registry"))
    monkeypatch.delenv("RESPONDER_TIMELINE_SIGNING_KEY", raising=False)


@pytest.mark.parametrize("command", COMMANDS, ids=["quarantine", "switch", "rollback"])
def test_a_timeline_held_by_another_writer_exits_3_naming_it_and_the_way_around(tmp_path, command):
    """The lock's refusal says who holds it and, as `undo` does, that a running service takes `--via kafka`."""
    path = tmp_path / "t.jsonl"
    held = FileStore(path)  # the service, say
    try:
        out = CliRunner().invoke(app, [*command, "--timeline", str(path)])
    finally:
        held.close()
    assert out.exit_code == 3, out.output
    assert f"timeline {path} is in use by" in out.output
    assert "use --via kafka" in out.output
    assert "Traceback" not in out.output


@pytest.mark.parametrize("command", COMMANDS, ids=["quarantine", "switch", "rollback"])
def test_a_timeline_that_cannot_be_opened_exits_3_with_one_line(tmp_path, command):
    """A directory (or a file without write permission) given as the timeline was a traceback, exit 1."""
    out = CliRunner().invoke(app, [*command, "--timeline", str(tmp_path)])
    assert out.exit_code == 3, out.output
    assert f"timeline {tmp_path} cannot be opened for writing" in out.output
    assert "Traceback" not in out.output
    assert out.exception is None or isinstance(out.exception, SystemExit)


def test_rollback_without_from_reads_the_served_version_under_the_lock(tmp_path, monkeypatch):
    """`models rollback MODEL` reads the served version only once it holds the timeline's lock."""
    from responder.actuators.model.rollback import RollbackToLastSigned
    from responder.errors import ConfigError, TimelineLocked

    path = tmp_path / "t.jsonl"
    held = FileStore(path)  # the service, say
    try:
        out = CliRunner().invoke(app, ["models", "rollback", "fraud", "--timeline", str(path)])
    finally:
        held.close()
    assert out.exit_code == 3, out.output
    assert f"timeline {path} is in use by" in out.output

    locked: list[bool] = []

    async def served(self: object, raw: dict[str, object], ctx: object) -> dict[str, object]:
        try:
            FileStore(path).close()
            locked.append(False)
        except TimelineLocked:
            locked.append(True)
        raise ConfigError("no version of fraud is served")

    monkeypatch.setattr(RollbackToLastSigned, "operator_params", served)
    out = CliRunner().invoke(app, ["models", "rollback", "fraud", "--timeline", str(path)])
    assert (out.exit_code, locked) == (3, [True]), out.output
    FileStore(path).close()  # released: another writer opens it


BAD = [["models", "quarantine", "Bad Name!", "v1", "--reason", "test"], ["models", "switch", "fraud", "v1 bad"],
       ["models", "rollback", "fraud", "--from", "../v2"],
       ["models", "rollback", "fraud", "--registry", "reg\x01istry"]]


@pytest.mark.parametrize("command", BAD, ids=["quarantine-model", "switch-version", "rollback-from", "registry"])
def test_invalid_arguments_are_refused_before_the_timeline_is_opened(tmp_path, command):
    """Invalid model, version or registry arguments exit 3 naming them, before a registry read or any timeline file."""
    path = tmp_path / "audit" / "t.jsonl"
    out = CliRunner().invoke(app, [*command, "--timeline", str(path)])
    assert out.exit_code == 3, out.output
    assert "invalid parameters" in out.output
    assert not (tmp_path / "audit").exists()
