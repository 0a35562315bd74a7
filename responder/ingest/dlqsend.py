"""Sending a rejected record's dead-letter copy (built by `responder.ingest.dlq`) through the ingest's producer.

A copy that still cannot be sent after `DLQ_ATTEMPTS` tries (too large for this broker, or refused) is replaced by
the minimal copy, so one record never blocks its partition. Only when the minimal copy cannot be sent either (the
broker is gone) does the error propagate, and nothing is committed. An ACL refusing the topic is TopicRefused at
once, saying so.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog
from aiokafka.errors import KafkaError, MessageSizeTooLargeError, TopicAuthorizationFailedError

from responder.errors import TopicRefused
from responder.ingest.dlq import DeadLetter, full_copy, minimal_copy
from responder.models.event import RawRecord

log = structlog.get_logger(__name__)

DLQ_ATTEMPTS = 3  # sends of one dead-letter copy before the next, smaller, form is tried


async def send_deadletter(producer: Any, topic: str, record: RawRecord, reason: str, detail: str,
                          max_bytes: int) -> None:
    """Send a copy of `record` that fits in `max_bytes` to `topic` with the reason; waits for the ack."""
    now_ms = int(time.time() * 1000)
    copy = full_copy(record, reason, detail, now_ms, max_bytes)
    try:
        await _send_bounded(producer, topic, copy)
    except TopicAuthorizationFailedError as exc:
        why = (f"Kafka refuses this principal the dead-letter topic {topic!r} (an ACL: grant it "
               f"WRITE and DESCRIBE); {record.topic}[{record.partition}] offset {record.offset} stays uncommitted")
        log.error("deadletter_topic_refused", topic=topic, detail=why, error=repr(exc))
        raise TopicRefused(why) from exc
    except KafkaError as exc:
        log.error("deadletter_copy_failed", error=repr(exc), topic=record.topic, partition=record.partition,
                  offset=record.offset, size=copy.size)
        await _send_bounded(producer, topic, minimal_copy(record, reason, detail, now_ms, repr(exc)))
    log.warning("record_deadlettered", reason=reason, detail=detail[:200], topic=record.topic,
                partition=record.partition, offset=record.offset)


async def _send_bounded(producer: Any, topic: str, copy: DeadLetter) -> None:
    for attempt in range(DLQ_ATTEMPTS):
        try:
            await producer.send_and_wait(topic, copy.value, key=copy.key, headers=copy.headers)
            return
        except (MessageSizeTooLargeError, TopicAuthorizationFailedError):
            raise  # the same bytes will never fit, or the ACL refuses the topic: retrying is pointless
        except KafkaError:
            if attempt == DLQ_ATTEMPTS - 1:
                raise
            await asyncio.sleep(0.2 * 2**attempt)
