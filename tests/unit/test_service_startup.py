"""A service that fails while starting up closes the Kafka clients it never started."""

from __future__ import annotations

import gc
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog.testing

from responder.errors import ConfigError
from responder.sandbox import lifeline
from responder.service import Service
from responder.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def port_in_use() -> Iterator[int]:
    """A 127.0.0.1 port another socket listens on (the metrics server cannot bind it), closed after the test."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def _service(tmp_path: Path, **settings: Any) -> Service:
    """A service with no runbooks whose broker is never reached (its clients are built, not started)."""
    return Service(Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", runbooks_dir=tmp_path,
                            topics=["a"], **settings), runbooks=[])


async def test_start_up_failure_closes_the_unstarted_kafka_clients(tmp_path, port_in_use):
    """A metrics port already in use stops `run()` before consuming; every Kafka client is closed, none left to GC."""
    service = _service(tmp_path, metrics_host="127.0.0.1", metrics_port=port_in_use)
    with pytest.raises(OSError, match="address already in use"):
        await service.run()
    consumers = [service.ingest.consumer, service.approvals.consumer]
    if service.operator_ingest is not None:
        consumers.append(service.operator_ingest.consumer)
    assert [c._closed for c in consumers] == [True] * len(consumers)  # else: "Unclosed AIOKafkaConsumer" at GC
    assert service.publisher.producer._closed


async def test_start_up_failure_releases_the_timeline_lock_and_writes_nothing(tmp_path, port_in_use):
    """A start-up failure releases the timeline lock and leaves the file as it was, with no checkpoint."""
    from responder.timeline import FileStore, Recorder, generate_keypair
    from responder.timeline.checkpoint import Signer

    private = generate_keypair()[0]
    path = tmp_path / "t.jsonl"
    earlier = Recorder(FileStore(path), writer="earlier")  # a previous run without the key: an unsigned tail
    earlier.append("x", {"i": 1}, incident="inc")
    earlier.close()
    before = path.read_bytes()
    service = _service(tmp_path, metrics_host="127.0.0.1", metrics_port=port_in_use, timeline_signing_key=private)
    assert isinstance(service.recorder.signer, Signer)
    with pytest.raises(OSError, match="address already in use"):
        await service.run()
    FileStore(path).close()  # the lock was released (TimelineLocked before)
    assert path.read_bytes() == before
    service.recorder.close()  # still safe: closing a released recorder writes nothing
    assert path.read_bytes() == before


def _unclosed_kafka_clients() -> set[int]:
    """The ids of live aiokafka producers and consumers that were built and never closed (aiokafka logs
    `Unclosed AIOKafkaProducer` when such a one is collected)."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    gc.collect()
    return {id(o) for o in gc.get_objects() if isinstance(o, AIOKafkaProducer | AIOKafkaConsumer)
            and o._closed is False}


BAD_RUNBOOK = "id: bad\nversion: 1\ntrigger: {nope: 1}\nsteps: []\n"


@pytest.mark.parametrize(("setting", "message"), [
    ({}, "Extra inputs are not permitted"),  # the runbook directory holds BAD_RUNBOOK
    ({"topic_formats": {"a": "no-such-format"}}, "unknown formats"),
    ({"event_signing_key_sources": {"k9": ["falco"]}}, "names keys that are not configured"),
    ({"operator_permissions": {"k9": ["undo"]}}, "not in RESPONDER_APPROVAL_KEYS"),
    ({"guard_quotas": [{"nope": 1}]}, "RESPONDER_GUARD_QUOTAS"),
])
async def test_a_setting_refused_at_start_up_builds_no_kafka_client(tmp_path, setting, message):
    """Every ConfigError `Service()` raises on a setting or runbook comes before any Kafka client is built."""
    books = tmp_path / "runbooks"
    books.mkdir()
    if not setting:
        (books / "bad.yaml").write_text(BAD_RUNBOOK)
    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", runbooks_dir=books,
                        topics=["a"], **setting)
    before = _unclosed_kafka_clients()
    with pytest.raises(ConfigError, match=message) as refused:
        Service(settings)
    assert _unclosed_kafka_clients() - before == set(), refused.value  # alive: the traceback holds the frames


def test_run_refusing_a_runbook_exits_3_with_no_unclosed_client(tmp_path):
    """`responder run` on a directory with a bad runbook: the runbook's error, exit 3, and no `Unclosed` logged."""
    books = tmp_path / "runbooks"
    books.mkdir()
    (books / "bad.yaml").write_text(BAD_RUNBOOK)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESPONDER_")}
    env |= {"RESPONDER_KAFKA_BOOTSTRAP": "127.0.0.1:1", "RESPONDER_TIMELINE_PATH": str(tmp_path / "t.jsonl"),
            "RESPONDER_LOG_FORMAT": "console", "PYTHONDEVMODE": "1"}
    proc = lifeline.run([sys.executable, "-m", "responder", "run", "--runbooks", str(books)], cwd=ROOT, env=env,
                        capture_output=True, timeout=60, check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 3, err
    assert "bad.yaml:3" in err
    assert "Extra inputs are not permitted" in err
    for noise in ("Unclosed", "Traceback", "ResourceWarning"):
        assert noise not in err, err


async def test_a_client_failing_to_close_leaves_none_of_the_others_open(tmp_path, monkeypatch):
    """`close_unstarted` closes the other clients when the alerts consumer's stop raises, then raises that error."""
    service = _service(tmp_path)

    async def broken() -> None:
        raise RuntimeError("stop failed")

    monkeypatch.setattr(service.ingest, "stop", broken)
    with pytest.raises(RuntimeError, match="stop failed"):
        await service.close_unstarted()
    assert service.operator_ingest is not None
    closed = (service.approvals.consumer._closed, service.operator_ingest.consumer._closed,
              service.publisher.producer._closed)
    assert closed == (True, True, True)
    await service.ingest.consumer.stop()
    await service.ingest.producer.stop()  # the dead-letter producer its patched `stop` left


async def test_a_start_up_failure_is_raised_even_when_closing_the_clients_fails(tmp_path, monkeypatch, port_in_use):
    """A start-up failure is raised even when a client fails to close; that error is logged, the others closed."""
    service = _service(tmp_path, metrics_host="127.0.0.1", metrics_port=port_in_use)

    async def broken() -> None:
        raise RuntimeError("stop failed")

    monkeypatch.setattr(service.approvals, "stop", broken)
    with structlog.testing.capture_logs() as logs, pytest.raises(OSError, match="address already in use"):
        await service.run()
    assert (service.ingest.consumer._closed, service.publisher.producer._closed) == (True, True)
    assert [e["error"] for e in logs if e["event"] == "service_close_failed"] == ["RuntimeError: stop failed"]
    await service.approvals.consumer.stop()
