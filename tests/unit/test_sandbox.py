"""The embedded broker fails clearly when its binary is missing or dies, never outlives its owner, and removes the
log it made itself (never one its caller named)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest

from responder.errors import SandboxError
from responder.sandbox import Broker, free_port, tansu_binary


def test_missing_binary_is_a_clear_error(monkeypatch, tmp_path):
    """A CALF_TANSU_BIN that is not executable raises SandboxError naming it."""
    monkeypatch.setenv("CALF_TANSU_BIN", str(tmp_path / "nope"))
    with pytest.raises(SandboxError, match="CALF_TANSU_BIN"):
        tansu_binary()


def test_binary_that_dies_is_reported_with_its_output(monkeypatch, tmp_path):
    """A broker that exits at start raises SandboxError with its exit code and log tail."""
    fake = tmp_path / "tansu"
    fake.write_text("#!/bin/sh\necho 'Error: Server(Storage(FeatureNotEnabled))'\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CALF_TANSU_BIN", str(fake))
    with pytest.raises(SandboxError, match=r"exited with code 1.*FeatureNotEnabled"):
        Broker(log_path=tmp_path / "b.log").start(timeout=5)


def test_broker_starts_on_a_free_loopback_port_and_stops(tmp_path):
    """The real broker accepts on 127.0.0.1 and is gone after stop()."""
    broker = Broker(port=free_port(), log_path=tmp_path / "b.log")
    broker.start()
    assert broker.alive()
    broker.create_topics(["a-topic"], partitions=2)
    broker.create_topics(["a-topic"], partitions=2)  # existing topics are left alone
    broker.stop()
    assert not broker.alive()


LISTENS = """
import socket, sys, time
port = int(sys.argv[sys.argv.index("--listener-url") + 1].rsplit(":", 1)[1])
server = socket.create_server(("127.0.0.1", port))
print("fake broker listening", flush=True)
time.sleep(60)
"""
SILENT = "import time\nprint('fake broker stuck', flush=True)\ntime.sleep(60)\n"
DIES = "import sys\nprint('Error: Server(Storage(FeatureNotEnabled))', flush=True)\nsys.exit(1)\n"


def fake_tansu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, body: str) -> Path:
    """CALF_TANSU_BIN is a Python script with `body`; temporary files go to a fresh directory, returned."""
    fake = tmp_path / "tansu"
    fake.write_text(f"#!{sys.executable}\n{body}")
    fake.chmod(0o755)
    monkeypatch.setenv("CALF_TANSU_BIN", str(fake))
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    return temp


def test_stop_removes_the_log_the_broker_made(monkeypatch, tmp_path):
    """Without a log_path the broker logs to a tansu-*.log in the temp directory, and stop() removes it."""
    temp = fake_tansu(monkeypatch, tmp_path, LISTENS)
    broker = Broker()
    broker.start(timeout=10)
    [made] = temp.iterdir()
    assert made == broker.log_path
    assert made.name.startswith("tansu-")
    broker.stop()
    assert not made.exists()
    assert list(temp.iterdir()) == []


def test_stop_keeps_a_log_the_caller_named(monkeypatch, tmp_path):
    """A log_path given by the caller is still there, with the broker's output, after stop()."""
    fake_tansu(monkeypatch, tmp_path, LISTENS)
    with Broker(log_path=tmp_path / "b.log"):
        pass
    assert "fake broker listening" in (tmp_path / "b.log").read_text()


@pytest.mark.parametrize(("body", "error"), [(DIES, r"exited with code 1.*FeatureNotEnabled"),
                                             (SILENT, r"did not accept connections.*fake broker stuck")],
                         ids=["exits", "never-listens"])
def test_failed_start_quotes_the_log_and_removes_it(monkeypatch, tmp_path, body, error):
    """A broker that fails to start is reported with its log's tail, and the log it made itself is removed."""
    temp = fake_tansu(monkeypatch, tmp_path, body)
    with pytest.raises(SandboxError, match=error):
        Broker().start(timeout=2)
    assert list(temp.iterdir()) == []
