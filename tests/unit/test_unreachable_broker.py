"""An unreachable broker: attempts are logged as they happen, then one clear line and exit 3 within the timeout."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from responder.sandbox import lifeline

ROOT = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESPONDER_")}
    return {**env, "RESPONDER_KAFKA_BOOTSTRAP": f"127.0.0.1:{_closed_port()}", "RESPONDER_KAFKA_CONNECT_TIMEOUT": "2",
            "RESPONDER_TIMELINE_PATH": str(tmp_path / "t.jsonl"), "RESPONDER_LOG_FORMAT": "console"}


def test_run_logs_attempts_then_exits_3_with_one_line(tmp_path):
    """`responder run` logs each failed connection attempt, then one ✗ line naming the broker; exit 3, no trace."""
    env = _env(tmp_path)
    proc = lifeline.run([sys.executable, "-m", "responder", "run"], cwd=ROOT, env=env, capture_output=True,
                        timeout=60, check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 3, err
    assert err.count("kafka_connect_failed") >= 2
    last = err.strip().splitlines()[-1]
    assert last.startswith("✗ cannot reach Kafka at " + env["RESPONDER_KAFKA_BOOTSTRAP"]), last
    assert "RESPONDER_KAFKA_CONNECT_TIMEOUT sets the wait" in last  # the topic check waits that setting
    for noise in ("Traceback", "ExceptionGroup", "Unclosed"):
        assert noise not in err


def test_events_publish_exits_3_without_an_unclosed_producer(tmp_path):
    """`events publish` to a closed port: one ✗ line, exit 3, no `Unclosed AIOKafkaProducer`."""
    record = tmp_path / "r.json"
    record.write_text('{"hello": 1}')
    proc = lifeline.run([sys.executable, "-m", "responder", "events", "publish", str(record)], cwd=ROOT,
                        env=_env(tmp_path), capture_output=True, timeout=60, check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 3, err
    assert err.strip().splitlines()[-1].startswith("✗ cannot reach Kafka at ")
    for noise in ("Traceback", "Unclosed"):
        assert noise not in err
