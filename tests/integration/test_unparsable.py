"""A record the Kafka client cannot parse (a header key that is not UTF-8, which the broker accepts from any
producer) stops its consumer with one error saying where it stood, instead of a bare UnicodeDecodeError."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from responder.errors import UnparsableRecord
from responder.ingest.kafka import KafkaIngest, ensure_topics

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


async def _produce_unparsable(bootstrap: str, topic: str, tmp: Path) -> None:
    """One good record, then one whose header key is not UTF-8 (see unreadable_producer)."""
    (tmp / "v0.ok").write_bytes(b'{"x": 0}')
    (tmp / "v1.bad").write_bytes(b'{"x": 1}')
    env = dict(os.environ, AIOKAFKA_NO_EXTENSIONS="1", PYTHONPATH=str(ROOT))
    await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "tests.integration.unreadable_producer", bootstrap,
                                             topic, "k", str(tmp / "v0.ok"), str(tmp / "v1.bad")],
                            check=True, env=env, cwd=ROOT, timeout=60)


async def _poll_until_it_raises(ingest: KafkaIngest) -> None:
    for _ in range(50):  # until the batch is fetched
        await ingest.poll(timeout_ms=200)


async def test_an_unparsable_record_stops_the_consumer_saying_where(kafka_bootstrap, unique, tmp_path):
    """The alerts consumer raises UnparsableRecord naming the partition and offset it stood at, and logs it."""
    topic = f"alerts-{unique}"
    await ensure_topics(kafka_bootstrap, [topic], partitions=1)
    await _produce_unparsable(kafka_bootstrap, topic, tmp_path)
    ingest = KafkaIngest(kafka_bootstrap, [topic], f"g-{unique}", f"dlq-{unique}", manual_assignment=True)
    await ingest.start(30)
    try:
        with capture_logs() as logs, pytest.raises(UnparsableRecord, match=rf"{topic}\[0\]@0"):
            await _poll_until_it_raises(ingest)
    finally:
        await ingest.stop()
    assert "record_unparsable" in [e["event"] for e in logs]
