"""Operator requests over Kafka (aiokafka only here): send a signed request, wait for the owning service's reply.

A replica signs each reply with its timeline key (Ed25519 over `reply_signed`: the digest of the request it answers
and the value): with the public key (a `Checker`) only a reply that verifies for this request's exact bytes counts,
so whoever can write to the replies topic cannot show the operator a false answer, nor replay an old one, and a
reply to another request sent under this one's id (by another key holder) is not this one's answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import ValidationError

from responder.auth import signed_headers
from responder.ingest.admin import ensure_topics
from responder.ingest.clients import _start_with_retry, fixed_wait, stop_consumer
from responder.ingest.unreadable import getmany_past, readable
from responder.models.operator import (
    REPLY_KEY_HEADER,
    REPLY_SIGNATURE_HEADER,
    OperatorReply,
    OperatorRequest,
    ReplyWait,
    reply_signed,
    request_digest,
)
from responder.timeline.checkpoint import Checker

log = structlog.get_logger(__name__)
CONNECT_S = 15.0  # seconds its clients try to reach Kafka: fixed, RESPONDER_KAFKA_CONNECT_TIMEOUT does not set it
WAIT_SET_BY = fixed_wait("an operator request", CONNECT_S)


async def request_and_wait(bootstrap: str, requests_topic: str, replies_topic: str, request: OperatorRequest,
                           key_id: str, secret: bytes, timeout: float,
                           options: Mapping[str, Any] | None = None, checker: Checker | None = None) -> ReplyWait:
    """Publish the signed request keyed by incident, then wait for the reply carrying its id (none on timeout);
    with `checker`, only one a replica signed (`ReplyFilter`).

    The replies topic is read from its end as it was before the request was sent, so no earlier reply matches.
    """
    options = options or {}  # TLS / SASL, as for every other client
    await ensure_topics(bootstrap, [requests_topic, replies_topic], options=options)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **options)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", **options)  # a late offset reset must not skip the reply
    wanted = ReplyFilter(request, checker)
    try:  # either start failing, the other client is stopped too
        await _start_with_retry(producer, CONNECT_S, wait_set_by=WAIT_SET_BY)
        await _start_with_retry(consumer, CONNECT_S, wait_set_by=WAIT_SET_BY)
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
                reply = wanted.first((msg.key, msg.value, list(msg.headers or ())) for msg in replies)
                if reply is not None:
                    return ReplyWait(reply=reply, verified=checker is not None, refused=wanted.refused,
                                     refused_count=wanted.count)
    except TimeoutError:
        return ReplyWait(refused=wanted.refused, refused_count=wanted.count)
    finally:
        await stop_consumer(consumer)
        await producer.stop()


REFUSALS_KEPT = 10
Record = tuple[bytes | None, bytes, list[tuple[str, bytes]]]
"""A reply record's key, value and headers."""


class ReplyFilter:
    """Picks the reply to one request from the replies topic; each other record keyed by its id is refused, with
    why kept in `refused` (a reply that is no reply, names another request or action, or, with a checker, is not
    signed by a trusted replica key for this request's bytes: whoever may write to the topic wrote it, replays an old
    reply, or the replica answered another request sent under this one's id)."""

    def __init__(self, request: OperatorRequest, checker: Checker | None) -> None:
        self.request = request
        self.checker = checker
        self.digest = request_digest(request.canonical())  # the bytes sent: what the replica's signature covers
        self.refused: list[str] = []
        """Why the first `REFUSALS_KEPT` were refused, each also logged (a flood of forged replies keeps no more)."""
        self.count = 0

    def first(self, records: Iterable[Record]) -> OperatorReply | None:
        """The first of `records` that is the reply, or None."""
        for key, value, headers in records:
            if key != self.request.id.encode():
                continue
            problem, reply = self._check(value, dict(headers))
            if reply is not None:
                return reply
            self.count += 1
            if len(self.refused) < REFUSALS_KEPT:  # the rest only counted (the command prints the count)
                self.refused.append(problem)
                log.warning("operator_reply_refused", id=self.request.id, error=problem)
        return None

    def _check(self, value: bytes, headers: dict[str, bytes]) -> tuple[str, OperatorReply | None]:
        try:
            reply = OperatorReply.model_validate_json(value)
        except ValidationError as exc:
            return f"not a reply: {exc.errors()[0]['msg']}", None
        if reply.id != self.request.id:
            return f"names request {reply.id[:64]!r}", None
        if reply.action != self.request.action:
            return f"answers action {reply.action[:64]!r}, not {self.request.action!r}", None
        if self.checker is not None:
            key_id = headers.get(REPLY_KEY_HEADER, b"").decode(errors="replace")
            signature = headers.get(REPLY_SIGNATURE_HEADER, b"").decode(errors="replace")
            if not key_id or not signature:
                return "unsigned (no replica signature headers)", None
            if not self.checker.verifies(key_id, signature, reply_signed(self.digest, value)):
                return f"signature does not verify for this request under a trusted replica key (key id " \
                       f"{key_id[:64]!r})", None
        return "", reply
