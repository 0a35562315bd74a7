"""Records the Kafka client cannot parse are stepped over, once each, instead of stopping their consumer for ever.

aiokafka parses a record while `getmany()` hands it out. One it cannot parse, a header key that is not UTF-8 (the
broker takes any bytes, and anyone who may write to the topic can send one) or a batch whose records are malformed
under a valid CRC, raises from that `getmany()` and from every later one: the position stays before it. Unhandled,
one such record on the alerts topic would stop every replica that owns its partition, again after each restart.

`getmany_past` takes the records of each partition with records left one at a time when a poll raises so: the
position then stands at the record that cannot be parsed (aiokafka moves it only past records it handed out),
which is replaced by an `Unreadable` in its place and stepped over with a seek. The caller dead-letters it
(`RawRecord.unreadable`), so it is counted, shown and committed like any poison. A fetch returns whole batches
and aiokafka parses a batch from its first record, so the records after it in the same batch cannot be read
either: each is stepped over the same way. A batch holds one producer's records, so only the producer that sent
the unparsable record loses records (to the dead-letter topic, with their offsets). A batch whose CRC fails is
not stepped over: aiokafka fetches it again, as a transfer can be corrupted on the way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CorruptRecordException, IllegalStateError

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Unreadable:
    """A record the client could not parse, where it was, and why."""

    topic: str
    partition: int
    offset: int
    error: str


def _unparsable(exc: BaseException) -> bool:
    """Whether `exc` is a record that will never parse (not a CRC failure, which a new fetch may cure)."""
    if isinstance(exc, UnicodeDecodeError):
        return True
    return isinstance(exc, CorruptRecordException) and "Invalid CRC" not in str(exc)


async def getmany_past(consumer: AIOKafkaConsumer, *partitions: TopicPartition, timeout_ms: int,
                       max_records: int) -> dict[TopicPartition, list[Any]]:
    """`consumer.getmany(...)`, with each record that cannot be parsed replaced by an `Unreadable` and stepped
    over; any other error is raised as it is."""
    try:
        got: dict[TopicPartition, list[Any]] = await consumer.getmany(*partitions, timeout_ms=timeout_ms,
                                                                      max_records=max_records)
        return got
    except (UnicodeDecodeError, CorruptRecordException) as exc:
        if not _unparsable(exc):
            raise
    out: dict[TopicPartition, list[Any]] = {}
    paused = consumer.paused()
    wait = max(timeout_ms, 1000)  # the failed fetch is dropped: each probe may wait for the partition's refetch
    for tp in sorted(partitions or consumer.assignment(), key=lambda t: (t.topic, t.partition)):
        taken = await _one_by_one(consumer, tp, wait, max_records) if tp not in paused else []
        if taken:
            out[tp] = taken
    return out


async def _one_by_one(consumer: AIOKafkaConsumer, tp: TopicPartition, wait_ms: int, most: int) -> list[Any]:
    """The partition's next records (at most `most`) taken one at a time, each that cannot be parsed replaced by an
    `Unreadable` and seeked past; up to the high watermark the failed fetch saw."""
    taken: list[Any] = []
    while len(taken) < most:
        try:
            high = consumer.highwater(tp)
            if high is None or await consumer.position(tp) >= high:
                break
            one = await consumer.getmany(tp, timeout_ms=wait_ms, max_records=1)
        except (UnicodeDecodeError, CorruptRecordException) as exc:
            if not _unparsable(exc):
                raise
            offset = await consumer.position(tp)
            error = f"{type(exc).__name__}: {exc} (this record, or one before it in its batch, cannot be parsed)"
            log.error("record_unreadable", topic=tp.topic, partition=tp.partition, offset=offset, error=error)
            taken.append(Unreadable(tp.topic, tp.partition, offset, error))
            consumer.seek(tp, offset + 1)
            continue
        except IllegalStateError:  # revoked meanwhile: its next owner reads it
            break
        if not one.get(tp):
            break
        taken.extend(one[tp])
    return taken
