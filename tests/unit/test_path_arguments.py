"""A path argument or option that names nothing readable is one line naming it and the path, exit 3 (not click's usage
box and exit 2), the way a timeline path is (tests/unit/test_timeline_read_errors.py)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from responder.cli.app import app
from responder.sandbox import lifeline

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RESPONDER_TIMELINE_PATH", "RESPONDER_TIMELINE_VERIFY_KEY", "RESPONDER_TIMELINE_ARCHIVE",
                 "RESPONDER_TIMELINE_WRITERS", "RESPONDER_CONFIG"):
        monkeypatch.delenv(name, raising=False)


def _cases(tmp: Path) -> dict[str, tuple[list[str], str]]:
    """Each command with one missing path: its arguments and how the line names that path."""
    missing = tmp / "missing"
    timeline = tmp / "t.jsonl"
    timeline.write_text("")
    model = tmp / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"w")
    return {
        "events normalise": (["events", "normalise", str(missing)], f"event file {missing}"),
        "runbooks explain": (["runbooks", "explain", str(missing), "--runbooks", str(ROOT / "runbooks")],
                             f"event file {missing}"),
        "replay": (["replay", str(missing), "--runbooks", str(ROOT / "runbooks")], f"event file {missing}"),
        "models verify": (["models", "verify", str(missing)], f"model directory {missing}"),
        "models sign dir": (["models", "sign", str(missing), "--key", str(timeline), "--model", "m", "--version", "1"],
                            f"model directory {missing}"),
        "models sign --key": (["models", "sign", str(tmp), "--key", str(missing), "--model", "m", "--version", "1"],
                              f"--key {missing}"),
        "models verify --key": (["models", "verify", str(tmp), "--key", str(missing)], f"--key {missing}"),
        "models verify --signature": (["models", "verify", str(tmp), "--signature", str(missing)],
                                      f"--signature {missing}"),
        "models publish --signature": (["models", "publish", str(model), "--model", "m", "--version", "v1",
                                        "--registry", str(tmp / "registry"), "--signature", str(missing)],
                                       f"--signature {missing}"),
        "tabletop run --baseline": (["tabletop", "run", str(ROOT / "playbooks"), "--runbooks", str(ROOT / "runbooks"),
                                     "--baseline", str(missing)], f"--baseline {missing}"),
        "timeline verify --anchor": (["timeline", "verify", str(timeline), "--anchor", str(missing)],
                                     f"--anchor {missing}"),
    }


NAMES = ["events normalise", "runbooks explain", "replay", "models verify", "models sign dir", "models sign --key",
         "models verify --key", "models verify --signature", "models publish --signature", "tabletop run --baseline",
         "timeline verify --anchor"]


@pytest.mark.parametrize("name", NAMES)
def test_a_missing_path_is_one_line_naming_it_and_exit_3(name: str, tmp_path: Path) -> None:
    """The command exits 3 with one line `cannot read WHAT PATH: no such file or directory`, no usage box."""
    args, named = _cases(tmp_path)[name]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 3, (out.output, out.exception)
    assert out.stderr.strip().splitlines() == [f"✗ cannot read {named}: no such file or directory"], out.stderr


def test_a_file_where_a_directory_is_expected_and_the_reverse_are_named(tmp_path: Path) -> None:
    """A file given as the model directory, or a directory as an event file, is one line saying so, exit 3."""
    (tmp_path / "f").write_text("{}")
    file_as_dir = (["models", "verify", str(tmp_path / "f")], f"model directory {tmp_path / 'f'}: Not a directory")
    dir_as_file = (["events", "normalise", str(tmp_path)], f"event file {tmp_path}: Is a directory")
    for args, line in (file_as_dir, dir_as_file):
        out = CliRunner().invoke(app, args)
        assert out.exit_code == 3, out.output
        assert out.stderr.strip().splitlines() == [f"✗ cannot read {line}"], out.stderr


def test_a_named_pipe_is_read_once_not_opened_by_the_check(tmp_path: Path) -> None:
    """A FIFO given as the event file is read by the command, not opened by the readability check."""
    import os
    import sys
    import threading

    fifo = tmp_path / "alerts.fifo"
    os.mkfifo(fifo)
    record = (ROOT / "tests" / "fixtures" / "events" / "drift_detected.json").read_bytes()

    def feed() -> None:
        with fifo.open("wb") as fh:  # blocks until a reader opens the pipe
            fh.write(record)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        out = lifeline.run([sys.executable, "-m", "responder", "events", "normalise", "--json", str(fifo)],
                           capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
    finally:
        if writer.is_alive():  # the command never read it: let the writer go
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
    assert out.returncode == 0, out.stderr
    assert orjson.loads(out.stdout)["ok"] is True


def test_models_list_of_a_local_registry_that_does_not_exist_is_one_line_exit_3(tmp_path: Path) -> None:
    """`models list --registry DIR` with no DIR names it and exits 3; a registry lacking the model exits 0."""
    missing = tmp_path / "nope"
    out = CliRunner().invoke(app, ["models", "list", "fraud", "--registry", str(missing)])
    assert out.exit_code == 3, out.output
    assert out.stderr.strip().splitlines() == [f"✗ cannot read model registry {missing}: no such file or directory"]
    (tmp_path / "registry").mkdir()
    empty = CliRunner().invoke(app, ["models", "list", "fraud", "--registry", str(tmp_path / "registry"), "--json"])
    assert empty.exit_code == 0, empty.output
    assert orjson.loads(empty.stdout)["versions"] == []
