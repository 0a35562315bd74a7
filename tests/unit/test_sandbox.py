"""The embedded broker fails clearly when its binary is missing or dies, and never outlives its owner."""

from __future__ import annotations

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
