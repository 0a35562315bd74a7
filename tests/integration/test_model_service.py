"""Drift events on the real broker roll a model back through the running service, on a real registry."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from responder.actuators.model.local import LocalStore
from responder.ingest.kafka import publish
from responder.sandbox import lifeline
from responder.service import Service
from responder.timeline.chain import parse_lines, verify_entries
from responder.timeline.checkpoint import generate_keypair
from tests.integration.harness import make_settings, running, wait_for
from tests.modelkit import make_keys
from tests.modelkit import publish as publish_version

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = """\
id: drift-rollback
trigger: {source: responder.drift, type: model.drift,
          conditions: [{field: event.attributes.verdict, op: eq, value: detected}]}
group_by: "${event.attributes.model}:${event.attributes.version}"
window: 7200
steps:
  - id: roll-back
    actuator: model.rollback_to_last_signed
    when: [{field: incident.events, op: ge, value: 3}]
    with: {model: "${event.attributes.model}", from_version: "${event.attributes.version}"}
"""


async def _registry(tmp_path, monkeypatch) -> tuple[LocalStore, Path]:
    """A local registry serving signed v2 over signed v1 (trusted), and the drift runbook's directory."""
    keys = make_keys(tmp_path / "keys")
    monkeypatch.setenv("RESPONDER_MODEL_REGISTRY", str(tmp_path / "registry"))
    monkeypatch.setenv("RESPONDER_MODEL_TRUSTED_KEYS", json.dumps([str(keys.public)]))
    store = LocalStore(tmp_path / "registry")
    for version in ("v1", "v2"):
        await publish_version(store, tmp_path / "w", "fraud-scorer", version, keys.private)
    await store.set_serving("fraud-scorer", (await store.versions("fraud-scorer"))[-1])
    books = tmp_path / "runbooks"
    books.mkdir()
    (books / "drift-rollback.yaml").write_text(RUNBOOK)
    return store, books


async def test_third_detected_window_on_kafka_rolls_back(kafka_bootstrap, aws, topics, unique, tmp_path,
                                                         monkeypatch):
    """Three drift documents published to Kafka: the service serves v1 again and the timeline verifies."""
    store, books = await _registry(tmp_path, monkeypatch)
    timeline = tmp_path / "t.jsonl"
    t0 = datetime(2026, 11, 25, 12, tzinfo=UTC)
    docs = [orjson.dumps({"source": "responder.drift", "id": f"d{h}", "model": "fraud-scorer", "version": "v2",
                          "metric": "psi", "window": "1h", "statistic": 0.4, "threshold": 0.2, "verdict": "detected",
                          "time": (t0 + timedelta(hours=h)).isoformat()}) for h in range(3)]
    service = Service(make_settings(kafka_bootstrap, aws, topics, unique, timeline, books))
    async with running(service):
        await publish(kafka_bootstrap, topics["alerts"], docs, key=b"fraud-scorer")
        await wait_for(lambda: bool(service.engine.state.results()), timeout=60)
    assert await store.serving("fraud-scorer") == "v1"
    entries = list(parse_lines(timeline.read_bytes().splitlines()))
    verify_entries(entries)
    [result] = [e.body for e in entries if e.kind == "step.result"]
    assert (result["outputs"]["from"], result["outputs"]["to"]) == ("v2", "v1")


async def test_models_switch_via_kafka_runs_in_the_service(kafka_bootstrap, aws, topics, unique, tmp_path,
                                                           monkeypatch):
    """`models switch --via kafka`: the running service switches the pointer and records it with the operator."""
    import asyncio
    import os
    import sys

    store, books = await _registry(tmp_path, monkeypatch)
    timeline = tmp_path / "t.jsonl"
    ops = {"operator_requests_topic": f"opreq-{unique}", "operator_replies_topic": f"oprep-{unique}"}
    private, public = generate_keypair()
    service = Service(make_settings(kafka_bootstrap, aws, topics, unique, timeline, books,
                                    approval_keys={"ops": "operator-secret"}, timeline_signing_key=private,
                                    operator_permissions={"ops": ["models.switch"]}, **ops))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESPONDER_")}
    env |= {"RESPONDER_KAFKA_BOOTSTRAP": kafka_bootstrap, "RESPONDER_APPROVAL_KEYS": '{"ops": "operator-secret"}',
            "RESPONDER_TIMELINE_VERIFY_KEY": public,
            "RESPONDER_OPERATOR_REQUESTS_TOPIC": ops["operator_requests_topic"],
            "RESPONDER_OPERATOR_REPLIES_TOPIC": ops["operator_replies_topic"]}
    async with running(service):
        proc = await lifeline.exec_async(
            sys.executable, "-m", "responder", "models", "switch", "fraud-scorer", "v1", "--via", "kafka",
            "--by", "bob", "--json", cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0, err.decode()
    assert await store.serving("fraud-scorer") == "v1"
    assert orjson.loads(out.splitlines()[-1])["ok"] is True
    entries = list(parse_lines(timeline.read_bytes().splitlines()))
    assert verify_entries(entries)[0] == len(entries)
    [result] = [e.body for e in entries if e.kind == "step.result"]
    assert (result["actuator"], result["operator"], result["outputs"]["to"]) == ("model.switch_version", "bob", "v1")
