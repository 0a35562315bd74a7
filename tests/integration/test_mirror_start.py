"""The timeline's Kafka mirror whose bootstrap is a dead port for a while (then a forwarder to the test broker listens
on it): it neither fails nor gives up, and every line reaches the topic in order (responder/ingest/mirror.py)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from types import SimpleNamespace

import pytest
from structlog.testing import capture_logs

from responder.ingest.kafka import ensure_topics
from responder.ingest.mirror import KafkaMirror
from responder.sandbox.broker import free_port
from tests.integration.harness import read_all, wait_for

pytestmark = pytest.mark.integration


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


async def _forward(upstream: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One connection to the bootstrap port, piped both ways to the broker (its metadata names the broker itself)."""
    host, port = upstream.split(",")[0].rsplit(":", 1)
    up_reader, up_writer = await asyncio.open_connection(host, int(port))
    await asyncio.gather(_copy(reader, up_writer), _copy(up_reader, writer))


async def test_a_mirror_whose_bootstrap_answers_later_sends_every_line_in_order(kafka_bootstrap, unique):
    """A mirror whose bootstrap answers later sends every queued line to the topic in order."""
    topic = f"mirror-late-{unique}"
    await ensure_topics(kafka_bootstrap, [topic], partitions=1)
    port = free_port()
    mirror = KafkaMirror(f"127.0.0.1:{port}", topic, retry_delay=0.2)
    mirror.connect_timeout = 0.5
    lines = [b"line-%d" % seq for seq in range(4)]
    with capture_logs() as logs:
        mirror.accept([(SimpleNamespace(writer="host:1", seq=0), lines[0] + b"\n")])  # type: ignore[list-item]
        task = asyncio.create_task(mirror.run())
        await wait_for(lambda: any(e["event"] == "timeline_mirror_unavailable" for e in logs), 30)
        mirror.accept([(SimpleNamespace(writer="host:1", seq=s), lines[s] + b"\n") for s in (1, 2)])  # type: ignore[misc]
        server = await asyncio.start_server(functools.partial(_forward, kafka_bootstrap), "127.0.0.1", port)
        try:
            mirror.accept([(SimpleNamespace(writer="host:1", seq=3), lines[3] + b"\n")])  # type: ignore[list-item]
            await wait_for(lambda: mirror.sent == len(lines), 60)
            mirror.close()
            await asyncio.wait_for(task, 30)
        finally:
            server.close()
    assert [e["event"] for e in logs].count("timeline_mirror_recovered") == 1
    mirrored = await read_all(kafka_bootstrap, topic, len(lines), 30)  # one partition: in offset order
    assert [m.value for m in mirrored] == lines
