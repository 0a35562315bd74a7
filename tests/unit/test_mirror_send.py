"""The timeline's Kafka mirror after a failed send: a transient error is sent again after fresh metadata and said
once, not once a second; a line the topic refuses for good (too large) is dropped and counted, not retried forever
ahead of every later line; a topic refused by an ACL is said once and its lines wait, counted
(responder/ingest/mirror.py)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from aiokafka.errors import (
    KafkaTimeoutError,
    NotLeaderForPartitionError,
    TopicAuthorizationFailedError,
    UnknownTopicOrPartitionError,
)
from structlog.testing import capture_logs

from responder.ingest.mirror import KafkaMirror
from responder.metrics import Metrics
from tests.fakes import MirrorProducer, until_done


async def _mirror(producer: MirrorProducer, lines: list[bytes]) -> tuple[KafkaMirror, asyncio.Task[None]]:
    mirror = KafkaMirror("127.0.0.1:1", "timeline", retry_delay=0.01)
    await mirror.producer.stop()
    mirror.producer = producer  # type: ignore[assignment]
    task = asyncio.create_task(mirror.run())
    mirror.accept([(SimpleNamespace(writer="host:1", seq=seq), line + b"\n")  # type: ignore[misc]
                   for seq, line in enumerate(lines)])
    return mirror, task


async def test_a_transient_failure_is_sent_again_after_fresh_metadata_and_said_once() -> None:
    """A transiently failing mirror line is resent in order after fresh metadata, logged once per distinct error."""
    leader, expired = NotLeaderForPartitionError(), KafkaTimeoutError()
    producer = MirrorProducer([None, leader, None, leader, leader, expired])
    with capture_logs() as logs:
        mirror, task = await _mirror(producer, [b"1", b"2", b"3"])
        await until_done(lambda: mirror.sent == 3)
        mirror.close()
        await task
    assert producer.log == [b"1", b"3", b"3", b"2", b"3"]  # line 3, acked behind a failed line 2, is sent again
    assert producer.client.refreshed == 3
    failed = [e for e in logs if e["event"] == "timeline_mirror_failed"]
    assert [f["error"] for f in failed] == [repr(leader), repr(expired)]
    assert [e["event"] for e in logs].count("timeline_mirror_recovered") == 1


async def test_a_line_too_large_for_the_topic_is_dropped_not_retried_forever() -> None:
    """A mirror line too large for the topic is dropped and counted, the lines after it mirrored in order."""
    producer = MirrorProducer([], too_large=frozenset({b"huge"}))
    with capture_logs() as logs:
        mirror, task = await _mirror(producer, [b"1", b"huge", b"3"])
        await until_done(lambda: mirror.sent == 2)
        mirror.close()
        async with asyncio.timeout(5):
            await task
    assert producer.log == [b"1", b"3"]
    dropped = [e for e in logs if e["event"] == "timeline_mirror_line_dropped"]
    assert [(e["writer"], e["seq"]) for e in dropped] == [("host:1", 1)]  # which line the mirror lacks
    assert Metrics(mirror=mirror).value("responder_timeline_mirror_dropped") == 1


async def test_a_topic_refused_by_an_acl_is_said_once_and_its_lines_wait_counted() -> None:
    """A mirror topic refused by an ACL logs one `timeline_mirror_failed`, keeping lines queued until it is granted."""
    refused = TopicAuthorizationFailedError("timeline")
    producer = MirrorProducer([refused] * 20)
    with capture_logs() as logs:
        mirror, task = await _mirror(producer, [b"1", b"2"])
        await until_done(lambda: producer.client.refreshed >= 5)
        assert Metrics(mirror=mirror).value("responder_timeline_mirror_pending") == 2
        await until_done(lambda: mirror.sent == 2)
        mirror.close()
        await task
    assert producer.log[-2:] == [b"1", b"2"]
    failed = [e for e in logs if e["event"] == "timeline_mirror_failed"]
    assert [(f["log_level"], f["transient"]) for f in failed] == [("error", False)]


class _NoTopicYet(MirrorProducer):
    """`send` itself raises `refused` its first `refusals` times (as aiokafka's does after waiting out its request
    timeout for the metadata of a topic not there yet), then queues; every call counted."""

    def __init__(self, refusals: int) -> None:
        super().__init__([])
        self.refusals, self.calls = refusals, 0

    async def send(self, topic: str, value: bytes, *, key: bytes) -> asyncio.Future[Any]:
        self.calls += 1
        if self.refusals:
            self.refusals -= 1
            raise UnknownTopicOrPartitionError()
        return await super().send(topic, value, key=key)


async def test_a_send_refused_for_another_reason_than_size_stops_the_batch_there() -> None:
    """A mirror `send` refused for a reason other than size sends no later line in that attempt, keeping order."""
    producer = _NoTopicYet(refusals=2)
    mirror, task = await _mirror(producer, [b"1", b"2", b"3"])
    await until_done(lambda: mirror.sent == 3)
    mirror.close()
    await task
    assert producer.log == [b"1", b"2", b"3"]
    assert producer.calls == 5  # one call in each of the two refused attempts, then the three lines
