"""Replay of the dead-letter topic: re-publish rejected records, once their cause is fixed.

A dead-lettered record keeps its original value, key and headers, plus `dlq.*` headers (reason,
detail, topic, partition, offset, time, its broker timestamp). Replay sends value, key and the original headers
(without `dlq.*`) back to the original topic, or to `to_topic`, plus `responder-replay-of` naming the
dead-letter record (`topic:partition:offset`), stamped with the original's broker timestamp (`dlq.timestamp`; a
topic of `message.timestamp.type=LogAppendTime` stamps its own): an event whose time or id is the record's broker
time (a SageMaker report with no time or run name) is the same event again. A target of that stamp
(`CreateTime`) deleting by time would delete a record older than its retention at once: such a record (a margin
included) is neither sent nor noted, `too_old` (replayage.py says how the target is read).

Replay publishes each original record once per target. A record can be in the dead-letter topic twice: the service
stopped after sending its copy, before committing its offset, and dead-lettered it again at the restart. A copy is
identified by the target, the record it names (`identity`: `dlq.topic`, `dlq.partition`, `dlq.offset`) and the
digest of what it sends (`sent_digest`: key, value, original headers, broker time; computed, not read from
`dlq.sha256`), so a dead letter holding other bytes, or a record at the same offset of a topic created again, is
another one; a dead letter naming no such record is identified by its own coordinates, as every one was before
2026-12-06. Each record sent is noted under that identity in the ledger topic `<deadletter_topic>.replayed`, and a
later replay skips every copy of a record it holds (`already`); in one replay a second copy of a record sent (or,
`dry_run`, counted) is skipped as a `duplicate`. A ledger note of before 2026-12-06 names the copy's own
coordinates: it still skips that copy, and a copy of the same record read after it in the same replay (whatever
`reason` chooses). `force` reads no ledger and sends every copy. A crash between a send and its ledger note can
re-send that one record once; every effect downstream is idempotent anyway. Each send is sent again after a
transient error (a leader election: `send_retrying`, as the service's producers do); one that still fails stops the
replay there, and the result says which records were published (`published`) and which one was not (`failed`: it and
every later one; `unnoted` when it reached its topic but its ledger note did not; `uncertain` when its send gave up
on a transient error, a timeout, so it may have reached its topic). Minimal dead-letter records, cut copies
(`dlq.truncated`, `dlq.headers_dropped`) and copies whose key was replaced by its digest (`dlq.key_replaced`) are
never replayed: they are not the original bytes, which are still in their topic at the named offset. The ledger
topic is created compacted (`LEDGER_CONFIG`): its notes outlive the dead letters' retention.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from responder.bounds import SEND_DEADLINE
from responder.errors import ConfigError, UnreadableRecord
from responder.ingest.admin import ensure_topics
from responder.ingest.clients import (
    _start_with_retry,
    fixed_wait,
    send_retrying,
    stop_consumer,
    transient_send,
)
from responder.ingest.dlq import header_text
from responder.ingest.replayage import TargetAges, original_time
from responder.ingest.security import check_connection
from responder.ingest.unreadable import getmany_past, readable
from responder.models.event import REPLAY_OF_HEADER

log = structlog.get_logger(__name__)
DLQ_PREFIX = "dlq."
# copies that are not the original record (`dlq.key_replaced`: its key, over 4 KiB, is the key's digest)
NOT_ORIGINAL = ("dlq.minimal", "dlq.truncated", "dlq.headers_dropped", "dlq.key_replaced")
# every ledger key names one record and target once: compacted, the notes outlive any retention of the dead letters
LEDGER_CONFIG = {"cleanup.policy": "compact"}
CONNECT_S = 15.0  # seconds its clients try to reach Kafka: fixed, RESPONDER_KAFKA_CONNECT_TIMEOUT does not set it
WAIT_SET_BY = fixed_wait("a dead-letter replay", CONNECT_S)


@dataclass
class ReplayResult:
    """What a replay read and sent."""

    scanned: int = 0
    replayed: int = 0
    already: int = 0  # the ledger held their record for their target: an earlier replay sent it
    duplicates: int = 0  # another copy of their record was sent (or counted, dry_run) earlier in this replay
    too_old: int = 0  # stamped before their target's retention (+ an hour): not sent, it would delete them at once
    unreplayable: int = 0  # cut copies (not the original bytes): fetch the original from its topic by offset
    own_topic: int = 0  # chosen records whose origin is the dead-letter topic or its ledger: never sent back there
    by_reason: Counter[str] = field(default_factory=Counter)
    targets: Counter[str] = field(default_factory=Counter)
    published: list[str] = field(default_factory=list)  # `<dlq coords> -> <target>`, in order, sent and noted
    failed: str | None = None  # the dead letter whose send still failed: the replay stopped there
    unnoted: bool = False  # `failed` reached its target, its ledger note did not (a later replay sends it again)
    uncertain: bool = False  # `failed`'s own send gave up on a transient error (a timeout): it may have reached it
    error: str | None = None  # what the failed send raised last


def _number(text: str | None) -> int | None:
    return int(text) if text is not None and text.isascii() and text.isdigit() else None


def sent_digest(key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]],
                timestamp_ms: int | None) -> str:
    """SHA-256 (hex) of what a replay sends: key, value, the original headers and the broker time it stamps, each
    length-prefixed. Two copies of one record hold the same; a dead letter holding other bytes is another record,
    whatever its `dlq.sha256` says."""
    parts = [b"" if key is None else b"k" + key, value or b"", str(timestamp_ms).encode(),
             *(part for name, header in headers for part in (name.encode(), header))]
    return hashlib.sha256(b"".join(len(p).to_bytes(8, "big") + p for p in parts)).hexdigest()


def identity(headers: list[tuple[str, bytes]], target: str, coords: str, digest: str) -> bytes:
    """The ledger key of dead letter `coords` replayed to `target`: the target, the record it is a copy of
    (`dlq.topic`, `dlq.partition`, `dlq.offset`) and `digest` (`sent_digest`), so that every copy of one record is
    one; `target|coords` for a dead letter naming no record (the only key before 2026-12-06)."""
    topic, partition, offset = (header_text(headers, f"dlq.{name}") for name in ("topic", "partition", "offset"))
    number, at = _number(partition), _number(offset)
    if not topic or number is None or at is None:
        return f"{target}|{coords}".encode()
    return f"{target}|original={topic}:{number}:{at};sha256={digest}".encode()


async def _drain(consumer: AIOKafkaConsumer, idle_seconds: float) -> list[Any]:
    """Every record of the consumer's topics, read until `idle_seconds` pass without a new one."""
    out: list[Any] = []
    idle_since = time.monotonic()
    while time.monotonic() - idle_since <= idle_seconds:
        records, _ = readable(await getmany_past(consumer, timeout_ms=300, max_records=500))
        if records:
            out += records
            idle_since = time.monotonic()
    return out


async def _ledger(bootstrap: str, topic: str, idle_seconds: float,
                  options: Mapping[str, Any] | None = None) -> set[bytes]:
    """Keys already noted in the replay ledger."""
    await ensure_topics(bootstrap, [topic], partitions=1, options=options, configs=LEDGER_CONFIG)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", **(options or {}))
    await _start_with_retry(consumer, CONNECT_S, wait_set_by=WAIT_SET_BY)
    try:
        return {m.key for m in await _drain(consumer, idle_seconds) if m.key is not None}
    finally:
        await stop_consumer(consumer)


async def replay_deadletters(
    bootstrap: str,
    deadletter_topic: str,
    *,
    reason: str | None = None,
    to_topic: str | None = None,
    limit: int | None = None,
    dry_run: bool = False,
    idle_seconds: float = 3.0,
    options: Mapping[str, Any] | None = None,
    force: bool = False,
) -> ReplayResult:
    """Read the whole dead-letter topic once and re-publish the matching records not replayed before."""
    result = ReplayResult()
    ledger_topic = f"{deadletter_topic}.replayed"
    if to_topic in (deadletter_topic, ledger_topic):  # it would read what it sends, and send it again, for ever
        raise ConfigError(f"--topic {to_topic!r} is the dead-letter topic or its replay ledger: a replay there would "
                          "read back every record it sends and send it again without end")
    await check_connection(bootstrap, options or {})
    done = set() if force else await _ledger(bootstrap, ledger_topic, min(idle_seconds, 1.5), options)
    ages = TargetAges(bootstrap, options)  # each target's retention, read once
    counted: set[bytes] = set()  # the records this replay sent (or counted, dry_run): their other copies are not
    consumer = AIOKafkaConsumer(deadletter_topic, bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest", **(options or {}))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **(options or {}))
    try:  # either start failing, the other client is stopped too
        await _start_with_retry(consumer, CONNECT_S, wait_set_by=WAIT_SET_BY)
        await _start_with_retry(producer, CONNECT_S, wait_set_by=WAIT_SET_BY)
        idle_since = time.monotonic()
        while (limit is None or result.replayed < limit) and result.failed is None:
            records, unreadable = readable(await getmany_past(consumer, timeout_ms=300, max_records=500))
            result.scanned += unreadable  # a dead letter the client cannot parse: counted, never re-published
            result.unreplayable += unreadable
            if not records and not unreadable:
                if time.monotonic() - idle_since > idle_seconds:
                    break
                continue
            idle_since = time.monotonic()
            for msg in records:
                result.scanned += 1
                headers = [(k, v if v is not None else b"") for k, v in (msg.headers or ())]
                why = header_text(headers, "dlq.reason") or "unknown"
                target = to_topic or header_text(headers, "dlq.topic")
                if not target:
                    continue
                coords = f"{msg.topic}:{msg.partition}:{msg.offset}"
                chosen, noted_as_itself = reason is None or why == reason, f"{target}|{coords}".encode() in done
                if target in (deadletter_topic, ledger_topic):  # a service that consumed its own dead-letter topic
                    result.own_topic += chosen
                    continue
                if not chosen and not noted_as_itself:  # left out by `reason`: not hashed
                    continue
                original = [(k, v) for k, v in headers if not k.startswith(DLQ_PREFIX) and k != REPLAY_OF_HEADER]
                stamp = original_time(headers)
                ledger_key = identity(headers, target, coords, sent_digest(msg.key, msg.value, original, stamp))
                if noted_as_itself:  # noted as itself (before 2026-12-06), whatever `reason`:
                    done.add(ledger_key)  # its record was sent, its copies read later are skipped too
                if not chosen:
                    continue
                if any(header_text(headers, h) is not None for h in NOT_ORIGINAL) or \
                        why == UnreadableRecord.reason_code:  # its header keys escaped, or a whole batch
                    result.unreplayable += 1  # not the original bytes: fetch it from its topic by offset
                    continue
                if ledger_key in done:
                    result.already += 1
                    continue
                if ledger_key in counted and not force:
                    result.duplicates += 1
                    continue
                if await ages.too_old(target, stamp):  # neither sent nor noted: its target would delete it at once
                    result.too_old += 1
                    continue
                if not dry_run and not await _republish(
                        producer, result, msg, target, [*original, (REPLAY_OF_HEADER, coords.encode())],
                        stamp, ledger_topic=ledger_topic, ledger_key=ledger_key):
                    break
                counted.add(ledger_key)
                result.replayed += 1
                result.by_reason[why] += 1
                result.targets[target] += 1
                if limit is not None and result.replayed >= limit:
                    break
    finally:
        await stop_consumer(consumer)
        await producer.stop()
    log.info("deadletters_replayed", scanned=result.scanned, replayed=result.replayed, already=result.already,
             duplicates=result.duplicates, too_old=result.too_old, dry_run=dry_run, reasons=dict(result.by_reason),
             failed=result.failed)
    return result


async def _republish(producer: AIOKafkaProducer, result: ReplayResult, msg: Any, target: str,
                     headers: list[tuple[str, bytes]], timestamp_ms: int | None, *, ledger_topic: str,
                     ledger_key: bytes) -> bool:
    """Send dead letter `msg` to `target`, then note it in the ledger under `ledger_key` (its `identity`; the note's
    value is the dead letter's coordinates), each sent again after a transient error (`send_retrying`); whether
    both went. When one still fails, `result` says which record and whether it reached `target` (`unnoted`), and
    the failure is logged (`deadletter_replay_failed`)."""
    coords = f"{msg.topic}:{msg.partition}:{msg.offset}"
    try:
        await send_retrying(producer, target, msg.value, key=msg.key, headers=headers, timestamp_ms=timestamp_ms,
                            deadline=SEND_DEADLINE)
        result.unnoted = True
        await send_retrying(producer, ledger_topic, coords.encode(), key=ledger_key, deadline=SEND_DEADLINE)
    except KafkaError as exc:
        result.failed, result.error = coords, f"{type(exc).__name__}: {exc}"
        result.uncertain = not result.unnoted and transient_send(exc)  # a timed-out send may still have landed
        log.error("deadletter_replay_failed", record=coords, target=target, reached_target=result.unnoted,
                  error=result.error, published=len(result.published))
        return False
    result.unnoted = False
    result.published.append(f"{coords} -> {target}")
    return True
