"""A poison record whose dead-letter copy cannot be sent (the broker gone past the send deadline) is never committed
past: the chunk fails, the service stops, nothing of the chunk is committed, so the record is read again at the
restart (responder/ingest/dlqsend.py, responder/service/batches.py)."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.errors import NodeNotReadyError

from responder.models.event import RawRecord
from responder.service import Service
from responder.settings import Settings


class _GoneBroker:
    """Every send fails as while no broker answers."""

    def __init__(self) -> None:
        self.sends = 0

    async def send_and_wait(self, topic: str, value: bytes, **_: Any) -> None:
        self.sends += 1
        raise NodeNotReadyError("node 1")

    async def stop(self) -> None: ...


@pytest.mark.parametrize("interval_ms", [0, 100])
async def test_a_dead_letter_that_cannot_be_sent_stops_the_service_and_commits_nothing(tmp_path, interval_ms):
    """A dead letter unsendable past the deadline fails the chunk, stops the service, and commits no offset."""
    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", topics=["a"],
                        kafka_commit_interval_ms=interval_ms)
    service = Service(settings, runbooks=[])
    committed: list[dict[Any, int]] = []

    async def commit(offsets: dict[Any, int]) -> None:
        committed.append(dict(offsets))

    service.ingest.commit = commit  # type: ignore[method-assign]
    await service.ingest.producer.stop()
    broker = _GoneBroker()
    service.ingest.producer = broker  # type: ignore[assignment]
    service.ingest.deadletter_deadline = 0.3
    batch = {("a", 0): [RawRecord(topic="a", partition=0, offset=0, key=b"k", value=b'{"ok": 1}'),
                        RawRecord(topic="a", partition=0, offset=1, key=b"p", value=b"{not json")]}
    try:
        with pytest.raises(NodeNotReadyError):
            await service._handle_batch(batch)
        assert broker.sends > 1  # sent again until the deadline
        assert committed == []
        assert service.commits.pending() == {}
        assert service.unready() == "stopping"
    finally:
        await service.close_unstarted()
        service.recorder.close()
