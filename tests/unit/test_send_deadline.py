"""The send deadline counts from a send's first transient failure, not from its first attempt: aiokafka gives a batch
up only after its request timeout (40 s by default, the changelog's, dead-letter and approvals producers'), longer
than the 30 s deadline, so a deadline counted from the first attempt never sent anything again
(responder/ingest/clients.py `resending`)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiokafka.errors import RequestTimedOutError

from responder.ingest.clients import send_retrying
from responder.ingest.dlqsend import send_deadletter
from responder.models.event import RawRecord
from tests.fakes import MetadataClient


class _SlowProducer:
    """Its next `failures` sends each wait `took` seconds (aiokafka waiting out its request timeout), then fail
    transiently; later sends are acknowledged at once."""

    def __init__(self, failures: int, took: float) -> None:
        self.failures, self.took, self.client = failures, took, MetadataClient()
        self.sent: list[bytes | None] = []

    async def send_and_wait(self, topic: str, value: bytes | None, **_: Any) -> None:
        if self.failures:
            self.failures -= 1
            await asyncio.sleep(self.took)
            raise RequestTimedOutError()
        self.sent.append(value)


async def test_a_send_that_failed_after_longer_than_the_deadline_is_sent_again() -> None:
    """The first attempt fails transiently only after more than the deadline: the record is sent again and lands."""
    producer = _SlowProducer(1, took=0.3)
    await send_retrying(producer, "notifications", b"v", deadline=0.2)
    assert producer.sent == [b"v"]


async def test_the_deadline_still_ends_the_resends() -> None:
    """Every attempt fails transiently: the last error is raised about `deadline` seconds after the first failure."""
    producer = _SlowProducer(10_000, took=0.05)
    started = time.monotonic()
    with pytest.raises(RequestTimedOutError):
        await send_retrying(producer, "notifications", b"v", deadline=0.5)
    assert 0.55 <= time.monotonic() - started < 5.0  # the last backoff: at most 2 s and its jitter
    assert producer.sent == []


async def test_a_dead_letter_whose_first_send_outlasted_the_deadline_is_the_full_copy() -> None:
    """A dead letter whose first send outlasted the deadline is sent again as the full copy."""
    producer = _SlowProducer(1, took=0.3)
    record = RawRecord(topic="alerts", partition=0, offset=3, key=b"k", value=b"{not json")
    await send_deadletter(producer, "dlq", record, "not_json", "bad", 1_000_000, deadline=0.2)
    assert producer.sent == [b"{not json"]
