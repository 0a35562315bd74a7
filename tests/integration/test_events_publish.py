"""`responder events publish`: the documented producer helper, signing records a service then accepts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from typer.testing import CliRunner

from responder.auth import KEY_ID_HEADER, SIGNATURE_HEADER, KeyRing
from responder.cli.app import app
from responder.errors import ConfigError
from responder.service import Service
from responder.settings import Settings

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "events"


async def test_publish_signs_each_record_with_the_named_key(kafka_bootstrap, topics):
    """A JSON file becomes one signed record, a JSON Lines file one per line; the signatures verify."""
    env = {"RESPONDER_EVENT_SIGNING_KEYS": '{"producer-1": "s3cret", "producer-0": "old"}'}
    args = ["events", "publish", "--topic", topics["alerts"], "--bootstrap", kafka_bootstrap,
            "--sign-key-id", "producer-1", str(FIXTURES / "drift_detected.json"), str(FIXTURES / "mixed.jsonl")]
    result = await asyncio.to_thread(CliRunner().invoke, app, args, env=env)
    assert result.exit_code == 0, result.output
    assert "published 3 record(s)" in result.stdout
    consumer = AIOKafkaConsumer(topics["alerts"], bootstrap_servers=kafka_bootstrap, group_id=None,
                                auto_offset_reset="earliest")
    await consumer.start()
    got = []
    try:
        async with asyncio.timeout(20):
            while len(got) < 3:
                batch = await consumer.getmany(timeout_ms=300)
                got += [m for msgs in batch.values() for m in msgs]
    finally:
        await consumer.stop()
    ring = KeyRing({"producer-1": "s3cret"})
    for msg in got:
        headers = dict(msg.headers)
        assert headers[KEY_ID_HEADER] == b"producer-1"
        assert ring.check("producer-1", headers[SIGNATURE_HEADER].decode(), msg.value) is None
    assert sorted(len(m.value) for m in got)[-1] == (FIXTURES / "drift_detected.json").stat().st_size


async def test_publish_refuses_an_unknown_key_id(kafka_bootstrap, topics):
    """Asking to sign with a key that is not configured is a configuration error (exit 3), nothing is sent."""
    args = ["events", "publish", "--topic", topics["alerts"], "--bootstrap", kafka_bootstrap,
            "--sign-key-id", "nope", str(FIXTURES / "drift_detected.json")]
    result = await asyncio.to_thread(CliRunner().invoke, app, args, env={"RESPONDER_EVENT_SIGNING_KEYS": "{}"})
    assert result.exit_code == 3
    assert "nope" in result.output


async def test_service_refuses_unknown_topic_formats(kafka_bootstrap, tmp_path):
    """A typo in topic_formats fails at start-up naming the format, before anything is consumed."""
    settings = Settings(kafka_bootstrap=kafka_bootstrap, topic_formats={"security.alerts": "gaurdduty"},
                        timeline_path=tmp_path / "t.jsonl")
    with pytest.raises(ConfigError, match="gaurdduty"):
        Service(settings)
