"""Operator requests over Kafka (aiokafka only here): send a signed request, wait for the owning service's reply."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import ValidationError

from responder.auth import signed_headers
from responder.ingest.clients import _start_with_retry, ensure_topics
from responder.ingest.unreadable import getmany_past, readable
from responder.models.operator import OperatorReply, OperatorRequest

log = structlog.get_logger(__name__)


async def request_and_wait(bootstrap: str, requests_topic: str, replies_topic: str, request: OperatorRequest,
                           key_id: str, secret: bytes, timeout: float,
                           options: Mapping[str, Any] | None = None) -> OperatorReply | None:
    """Publish the signed request keyed by incident, then wait for the reply carrying its id (None on timeout).

    The replies topic is read from its end as it was before the request was sent, so no earlier reply matches.
    """
    options = options or {}  # TLS / SASL, as for every other client
    await ensure_topics(bootstrap, [requests_topic, replies_topic], options=options)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **options)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", **options)  # a late offset reset must not skip the reply
    await _start_with_retry(producer, 15.0)
    await _start_with_retry(consumer, 15.0)
    try:
        # the producer waits for the topic's metadata (a consumer's topics() does not keep it on every broker)
        parts = [TopicPartition(replies_topic, p) for p in sorted(await producer.partitions_for(replies_topic))]
        consumer.assign(parts)
        ends = await consumer.end_offsets(parts)
        for tp in parts:
            consumer.seek(tp, ends[tp])
        value = request.canonical()
        await producer.send_and_wait(requests_topic, value, key=request.key,
                                     headers=signed_headers(key_id, secret, value))
        log.info("operator_request_sent", id=request.id, action=request.action, topic=requests_topic)
        async with asyncio.timeout(timeout):
            while True:
                replies, _ = readable(await getmany_past(consumer, timeout_ms=500, max_records=500))
                # one the client cannot parse is not a reply as the replica sent it
                reply = reply_for(((msg.key, msg.value) for msg in replies), request.id)
                if reply is not None:
                    return reply
    except TimeoutError:
        return None
    finally:
        await consumer.stop()
        await producer.stop()


def reply_for(records: Iterable[tuple[bytes | None, bytes]], request_id: str) -> OperatorReply | None:
    """The first of (key, value) records that is a reply to `request_id`: one keyed by it that is no reply, or
    names another id (whoever may write to the topic wrote it), is skipped with a warning, not raised."""
    for key, value in records:
        if key != request_id.encode():
            continue
        try:
            reply = OperatorReply.model_validate_json(value)
        except ValidationError as exc:
            log.warning("operator_reply_malformed", id=request_id, error=exc.errors()[0]["msg"])
            continue
        if reply.id == request_id:
            return reply
        log.warning("operator_reply_malformed", id=request_id, error=f"names request {reply.id[:64]!r}")
    return None
