"""Sending a rejected record's dead-letter copy (built by `responder.ingest.dlq`) through the ingest's producer.

A transient error (a leader moved or down, a request or batch timed out) is sent again as every producer of the
service does (`responder.ingest.clients.send_retrying`, up to `SEND_DEADLINE` seconds). A copy the broker refuses for
good (too large for it, or another permanent refusal) is replaced by the minimal copy, so one record never blocks its
partition. When a copy still cannot be sent (the broker stays gone past the deadline, or the minimal copy is
refused too), the error propagates: nothing of the chunk is committed, the service stops, and the record is read
again at the restart. An ACL refusing the topic is TopicRefused at once, saying so.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from aiokafka.errors import KafkaError, TopicAuthorizationFailedError

from responder.bounds import SEND_DEADLINE
from responder.errors import TopicRefused
from responder.ingest.clients import send_retrying, transient_send
from responder.ingest.dlq import DeadLetter, full_copy, minimal_copy
from responder.models.event import RawRecord

log = structlog.get_logger(__name__)


async def send_deadletter(producer: Any, topic: str, record: RawRecord, reason: str, detail: str,
                          max_bytes: int, *, deadline: float = SEND_DEADLINE) -> None:
    """Send a copy of `record` that fits in `max_bytes` to `topic` with the reason; waits for the ack."""
    now_ms = int(time.time() * 1000)
    copy = full_copy(record, reason, detail, now_ms, max_bytes)
    where = f"{record.topic}[{record.partition}] offset {record.offset}"
    try:
        try:
            await _send(producer, topic, copy, deadline)
        except KafkaError as exc:
            if transient_send(exc) or isinstance(exc, TopicAuthorizationFailedError):
                raise
            log.error("deadletter_copy_failed", error=repr(exc), topic=record.topic, partition=record.partition,
                      offset=record.offset, size=copy.size)
            await _send(producer, topic, minimal_copy(record, reason, detail, now_ms, repr(exc)), deadline)
    except TopicAuthorizationFailedError as exc:
        why = (f"Kafka refuses this principal the dead-letter topic {topic!r} (an ACL: grant it "
               f"WRITE and DESCRIBE); {where} stays uncommitted")
        log.error("deadletter_topic_refused", topic=topic, detail=why, error=repr(exc))
        raise TopicRefused(why) from exc
    except KafkaError as exc:
        log.critical("deadletter_unsent", topic=topic, error=repr(exc), deadline_s=deadline,
                     detail=f"{where} stays uncommitted: the service stops and reads it again at the restart")
        raise
    log.warning("record_deadlettered", reason=reason, detail=detail[:200], topic=record.topic,
                partition=record.partition, offset=record.offset)


async def _send(producer: Any, topic: str, copy: DeadLetter, deadline: float) -> None:
    await send_retrying(producer, topic, copy.value, key=copy.key, headers=copy.headers, deadline=deadline)
