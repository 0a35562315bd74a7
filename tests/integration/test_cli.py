"""The CLI as a user runs it: the demo end to end, and `run` stopping cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from responder.sandbox import SANDBOX_CREDENTIALS, lifeline
from responder.timeline.chain import parse_lines, verify_entries
from tests import process_kit

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _run_until_consuming(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[bytes], list[bytes]]:
    """Start `responder ARGS`; return it with its stderr lines up to `consumer_started` (or its early end)."""
    proc = lifeline.popen([sys.executable, "-m", "responder", *args], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 90
    lines = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        lines.append(line)
        if not line or b"consumer_started" in line:
            break
    return proc, lines


def test_demo_contains_the_key_and_leaves_nothing_behind(tmp_path):
    """`responder demo --json` reports the key Inactive, a verified timeline, and stops its broker."""
    timeline = tmp_path / "demo.jsonl"
    proc = lifeline.run(
        [sys.executable, "-m", "responder", "demo", "--json", "--timeline", str(timeline)],
        cwd=ROOT, capture_output=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    summary = orjson.loads(proc.stdout.splitlines()[-1])
    assert summary["ok"] is True
    assert summary["key_status"] == "Inactive"
    assert verify_entries(parse_lines(timeline.read_bytes().splitlines()))[0] == summary["entries"]
    assert summary["broker_pid"]
    assert not process_kit.running(summary["broker_pid"])


def _demo(timeline: Path, **env: str) -> subprocess.CompletedProcess[bytes]:
    """`responder demo --json` writing `timeline`, with `env` added to the environment."""
    return lifeline.run([sys.executable, "-m", "responder", "demo", "--json", "--timeline", str(timeline)],
                        cwd=ROOT, env={**os.environ, **env}, capture_output=True, timeout=120, check=False)


def _contained(proc: subprocess.CompletedProcess[bytes]) -> None:
    """Assert that the demo exited 0 with its key deactivated."""
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    summary = orjson.loads(proc.stdout.splitlines()[-1])
    assert (summary["ok"], summary["key_status"]) == (True, "Inactive"), summary


def test_demo_acts_in_the_sandbox_account_whatever_account_is_configured(tmp_path):
    """`responder demo` with a production `RESPONDER_AWS_ACCOUNT_ID` set still contains the sandbox's key."""
    _contained(_demo(tmp_path / "demo.jsonl", RESPONDER_AWS_ACCOUNT_ID="999999999999"))


def test_demo_acts_in_moto_s_account_when_moto_account_id_is_set(tmp_path):
    """`responder demo` with MOTO_ACCOUNT_ID set sends a finding about that account and contains the key."""
    timeline = tmp_path / "demo.jsonl"
    _contained(_demo(timeline, MOTO_ACCOUNT_ID="111111111111"))
    assert b'"incident_key":"111111111111:access_key:' in timeline.read_bytes()


def test_demo_refuses_a_moto_account_id_that_is_no_account(tmp_path):
    """`responder demo` with a MOTO_ACCOUNT_ID of no 12 digits exits as a configuration error, acting on nothing."""
    proc = _demo(tmp_path / "t.jsonl", MOTO_ACCOUNT_ID="not-an-account")
    assert proc.returncode == 3, proc.stderr.decode()[-2000:]
    assert b"MOTO_ACCOUNT_ID='not-an-account'" in proc.stderr, proc.stderr.decode()[-2000:]


def test_run_without_kafka_explains_how_to_configure(tmp_path):
    """`responder run` with no Kafka configured exits 3 and says how to configure one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESPONDER_")}
    proc = lifeline.run([sys.executable, "-m", "responder", "run"], cwd=ROOT, env=env,
                        capture_output=True, timeout=60, check=False)
    assert proc.returncode == 3
    assert b"RESPONDER_KAFKA_BOOTSTRAP" in proc.stderr + proc.stdout


def test_run_stops_cleanly_on_sigterm(kafka_bootstrap, moto_server, unique, tmp_path):
    """SIGTERM makes `responder run` drain, leave the group and exit 0."""
    env = {
        **os.environ,
        "RESPONDER_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "RESPONDER_TOPICS": f'["alerts-{unique}"]',
        "RESPONDER_GROUP_ID": f"g-{unique}",
        "RESPONDER_TIMELINE_PATH": str(tmp_path / "t.jsonl"),
        "RESPONDER_AWS_ENDPOINT_URL": moto_server.endpoint_url,
        "RESPONDER_AWS_ACCESS_KEY_ID": SANDBOX_CREDENTIALS["aws_access_key_id"],
        "RESPONDER_AWS_SECRET_ACCESS_KEY": SANDBOX_CREDENTIALS["aws_secret_access_key"],
        "RESPONDER_SESSION_TIMEOUT_MS": "6000",
    }
    proc, lines = _run_until_consuming(["run"], env)
    try:
        if not lines[-1]:
            pytest.fail(b"".join(lines).decode())
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert b"service_stopped" in err


def test_sandbox_command_serves_until_sigterm():
    """`responder sandbox --json` prints reachable endpoints and its account, and stops its broker on SIGTERM."""
    import socket

    env = {k: v for k, v in os.environ.items() if k != "MOTO_ACCOUNT_ID"}
    proc = lifeline.popen([sys.executable, "-m", "responder", "sandbox", "--json"], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        info = orjson.loads(proc.stdout.readline())
        assert info["RESPONDER_AWS_ACCOUNT_ID"] == "123456789012"
        host, port = info["RESPONDER_KAFKA_BOOTSTRAP"].split(":")
        socket.create_connection((host, int(port)), timeout=5).close()
        assert "security.alerts" in info["topics"]
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert not process_kit.running(info["broker_pid"])


def test_sandbox_command_refuses_a_moto_account_id_that_is_no_account():
    """`responder sandbox` with a MOTO_ACCOUNT_ID of no 12 digits exits as a configuration error, naming it."""
    env = {**os.environ, "MOTO_ACCOUNT_ID": "1234"}
    proc = lifeline.run([sys.executable, "-m", "responder", "sandbox", "--json"], cwd=ROOT, env=env,
                        capture_output=True, timeout=120, check=False)
    assert proc.returncode == 3, proc.stderr.decode()[-2000:]
    assert b"MOTO_ACCOUNT_ID='1234'" in proc.stderr


def test_run_sandbox_logs_in_one_format(tmp_path):
    """`run --sandbox` with JSON logs writes only JSON lines to stderr (no console lines mixed in) and nothing else."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RESPONDER_")},
           "RESPONDER_LOG_FORMAT": "json", "RESPONDER_TIMELINE_PATH": str(tmp_path / "t.jsonl")}
    proc, lines = _run_until_consuming(["run", "--sandbox"], env)
    try:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines += err.splitlines(keepends=True)
    assert any(b"sandbox_started" in line for line in lines), b"".join(lines).decode()[-2000:]
    for line in filter(bytes.strip, lines):
        assert isinstance(orjson.loads(line), dict), line
    assert out == b""


def test_demo_keep_leaves_a_sandbox_to_undo_on(tmp_path):
    """`demo --keep --json` prints one document, keeps broker and AWS up so `undo PREFIX` works, stops on SIGTERM."""
    from responder.sandbox import free_port

    timeline = tmp_path / "demo.jsonl"
    kafka_port, aws_port = free_port(), free_port()
    proc = lifeline.popen([sys.executable, "-m", "responder", "demo", "--keep", "--json", "--timeline", str(timeline),
                           "--kafka-port", str(kafka_port), "--aws-port", str(aws_port)], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        doc = orjson.loads(proc.stdout.readline())
        assert doc["demo"]["ok"] is True, doc
        assert doc["RESPONDER_KAFKA_BOOTSTRAP"] == f"127.0.0.1:{kafka_port}"
        assert doc["RESPONDER_AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{aws_port}"
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("RESPONDER_")},
               **{k: v for k, v in doc.items() if k.startswith("RESPONDER_")}}
        undo = lifeline.run([sys.executable, "-m", "responder", "undo", doc["demo"]["incident"][:8], "--json"],
                            cwd=ROOT, env=env, capture_output=True, timeout=120, check=False)
        assert undo.returncode == 0, undo.stderr.decode()[-2000:]
        assert orjson.loads(undo.stdout)["ok"] is True
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, proc.stderr.read().decode()[-2000:]
    assert not process_kit.running(doc["broker_pid"])
