"""`responder demo --via webhook` and `responder intake` as a user runs them."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import orjson
import pytest

from responder.sandbox import lifeline

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_demo_via_webhook_contains_the_key(tmp_path):
    """The finding POSTed to the intake (202 after the ack) deactivates the key; the timeline verifies."""
    proc = lifeline.run(
        [sys.executable, "-m", "responder", "demo", "--via", "webhook", "--json", "--timeline",
         str(tmp_path / "demo.jsonl")], cwd=ROOT, capture_output=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    summary = orjson.loads(proc.stdout.splitlines()[-1])
    assert summary["ok"] is True
    assert summary["key_status"] == "Inactive"


@pytest.mark.parametrize(("sources", "expected"), [
    ('{"splunk": {"auth": "url-token"}}', b"intake_sources.splunk"),
    ('{"splunk": {"keys": {"a": "b"}}}', b"auth"),
    ("{}", b"intake_sources"),
    ('{"splunk": {"auth": "open", "format": "splnk"}}', b"intake_sources.splunk.format: 'splnk'"),
])
def test_intake_refuses_to_start_on_bad_source_settings(sources: str, expected: bytes):
    """A source with no auth, no keys for its method or an unknown format stops `responder intake`: exit 3, one line."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RESPONDER_")},
           "RESPONDER_KAFKA_BOOTSTRAP": "127.0.0.1:9", "RESPONDER_INTAKE_SOURCES": sources,
           "RESPONDER_EVENT_SIGNING_KEYS": '{"i": "s"}', "RESPONDER_INTAKE_SIGNING_KEY_ID": "i"}
    proc = lifeline.run([sys.executable, "-m", "responder", "intake", "--port", "0"], cwd=ROOT, env=env,
                        capture_output=True, timeout=60, check=False)
    assert proc.returncode == 3, proc.stderr.decode()[-2000:]
    assert expected in proc.stderr + proc.stdout
