"""`getmany_past`: a poll that reads past the records aiokafka cannot parse, losing none of the others.

When `getmany()` raises while it parses a fetch (see `responder.ingest.recordbatch`), the records it had already
taken from other partitions are lost with the call, and the position of the partition it failed on stays before
the record: every later poll raises again. So, on that error only:

1. every partition whose position moved during the failed poll is set back to where it stood before it (those
   records are fetched again: nothing is lost, as the poll never returned them);
2. the unpaused partitions asked for are fetched once more, by this module, from the leaders, and read with the
   tolerant reader: good records come out as `Read`, the bad ones as `Unreadable` in their place;
3. each partition read is moved to the end of the batches read, and the poll returns them.

The caller dead-letters each `Unreadable` (its bytes and reason) and commits it like any other record. A batch
holds one producer's records; only a malformed record, or a whole batch that fails its CRC or cannot be
decompressed, is ever an `Unreadable`. When the second read makes no progress either (the leader is unknown,
the broker answers with an error), the poll stops with `UnparsableRecord`, naming where each partition stood.
Private aiokafka state is read here only (positions, leaders, the fetch size), with aiokafka pinned below 0.15.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CorruptRecordException, IllegalStateError, KafkaError, UnsupportedCodecError
from aiokafka.protocol.fetch import FetchRequest

from responder.errors import UnparsableRecord
from responder.ingest.recordbatch import Read, Unreadable, read_fetched

__all__ = ["Read", "Unreadable", "getmany_past", "unparsable"]

log = structlog.get_logger(__name__)

_PARSE_ERRORS = (UnicodeDecodeError, CorruptRecordException, UnsupportedCodecError)
_READ_UNCOMMITTED = 0


def _positions(consumer: AIOKafkaConsumer) -> tuple[Any, dict[TopicPartition, int]]:
    """The current assignment object and each assigned partition's position, where it has one."""
    subscription = consumer._subscription.subscription
    assignment = subscription.assignment if subscription is not None else None
    if assignment is None:
        return None, {}
    out = {}
    for tp in assignment.tps:
        state = assignment.state_value(tp)
        if state is not None and state.has_valid_position:
            out[tp] = state.position
    return assignment, out


async def _settled(consumer: AIOKafkaConsumer, assignment: Any,
                   timeout_ms: int) -> tuple[Any, dict[TopicPartition, int]]:
    """`_positions` once every assigned partition has its starting position (a new assignment is still looking
    it up), waiting at most `timeout_ms`: a poll that raises can only give back records from a known start."""
    missing = [tp for tp in assignment.tps if not assignment.state_value(tp).has_valid_position]
    with contextlib.suppress(TimeoutError, KafkaError, IllegalStateError):
        async with asyncio.timeout(timeout_ms / 1000):
            for tp in missing:
                await consumer.position(tp)
    return _positions(consumer)


async def getmany_past(consumer: AIOKafkaConsumer, *partitions: TopicPartition, timeout_ms: int,
                       max_records: int) -> dict[TopicPartition, list[Any]]:
    """`consumer.getmany(...)`; when it cannot parse what it fetched, the same partitions read by
    `responder.ingest.recordbatch` instead (records, and `Unreadable` in place of what cannot be parsed)."""
    before_assignment, before = _positions(consumer)
    if before_assignment is not None and len(before) < len(before_assignment.tps):  # after an assignment: wait
        before_assignment, before = await _settled(consumer, before_assignment, timeout_ms)  # for each start
    try:
        got: dict[TopicPartition, list[Any]] = await consumer.getmany(*partitions, timeout_ms=timeout_ms,
                                                                      max_records=max_records)
        return got
    except _PARSE_ERRORS as exc:
        error: Exception = exc
    subscription = consumer._subscription
    subscription._fetch_count = max(0, subscription._fetch_count - 1)  # aiokafka's fetch_context has no finally
    now, advanced = _give_back(consumer, before_assignment, before)
    wanted, paused = set(partitions) if partitions else set(now), consumer.paused()
    todo = sorted((tp for tp in now if tp in wanted and tp not in paused),  # the one that raised never advanced:
                  key=lambda tp: (tp in advanced, tp.topic, tp.partition))  # read first, within `max_records`
    read = await _read_again(consumer, {tp: now[tp] for tp in todo}, max_records)
    moved = False
    for tp, (records, after) in read.items():
        if after > now[tp] and tp in consumer.assignment():
            consumer.seek(tp, after)
            moved = True
        for record in records:
            if isinstance(record, Unreadable):
                log.error("record_unreadable", topic=tp.topic, partition=tp.partition, offset=record.offset,
                          first=record.first, error=record.error, client_error=repr(error))
    if not moved:
        raise await unparsable(consumer, error) from error
    return {tp: records for tp, (records, _) in read.items() if records}


def _give_back(consumer: AIOKafkaConsumer, before_assignment: Any,
               before: dict[TopicPartition, int]) -> tuple[dict[TopicPartition, int], set[TopicPartition]]:
    """Set back each partition the failed poll moved (its records went down with it), unless a rebalance came
    meanwhile (positions then come from the committed offsets, and are kept); the positions now, and the
    partitions that had moved."""
    assignment, now = _positions(consumer)
    if assignment is not before_assignment:
        return now, set()
    advanced = {tp for tp, was in before.items() if now.get(tp, was) > was}
    for tp in advanced:
        consumer.seek(tp, before[tp])
    return {tp: min(offset, before.get(tp, offset)) for tp, offset in now.items()}, advanced


async def _read_again(consumer: AIOKafkaConsumer, positions: dict[TopicPartition, int],
                      most: int) -> dict[TopicPartition, tuple[list[Read | Unreadable], int]]:
    """The partitions' records from their positions, fetched from their leaders and read by the tolerant reader,
    in the order given, whole batches, until `most` are read (the partitions after that are left as they are)."""
    client, fetcher = consumer._client, consumer._fetcher
    by_leader: dict[int, list[TopicPartition]] = defaultdict(list)
    for tp in positions:
        leader = client.cluster.leader_for_partition(tp)
        if leader is not None and leader >= 0:
            by_leader[leader].append(tp)
    fetched: dict[TopicPartition, bytes] = {}
    for leader, tps in by_leader.items():
        topics: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
        for tp in tps:
            topics[tp.topic].append((tp.partition, positions[tp], fetcher._max_partition_fetch_bytes))
        request = FetchRequest(0, 1, fetcher._fetch_max_bytes, _READ_UNCOMMITTED, list(topics.items()))
        try:
            response = await client.send(leader, request)
        except KafkaError as exc:
            log.warning("unreadable_refetch_failed", leader=leader, error=repr(exc))
            continue
        for topic, parts in response.topics:
            for partition, error_code, _high, *rest in parts:
                if error_code == 0:
                    fetched[TopicPartition(topic, partition)] = rest[-1] or b""
    out: dict[TopicPartition, tuple[list[Read | Unreadable], int]] = {}
    left = most
    for tp, position in positions.items():
        if left > 0 and tp in fetched:
            out[tp] = read_fetched(tp.topic, tp.partition, fetched[tp], position, left)
            left -= len(out[tp][0])
    return out


async def unparsable(consumer: AIOKafkaConsumer, exc: Exception) -> UnparsableRecord:
    """The error to stop with when neither aiokafka nor the tolerant reader gets past a record, logged with where
    each partition stood: the record is at or after one of those offsets."""
    where = [f"{tp.topic}[{tp.partition}]@{await consumer.position(tp)}"
             for tp in sorted(consumer.assignment(), key=lambda t: (t.topic, t.partition))]
    detail = ("a record the Kafka client cannot parse stops this consumer, and reading the fetch again did not get "
              "past it; find it at or after these offsets, and move the consumer group past it "
              "(docs/faults.md, 'A record the Kafka client cannot parse')")
    log.critical("record_unparsable", error=repr(exc), positions=where, detail=detail)
    return UnparsableRecord(f"{detail}: {', '.join(where)} ({exc!r})")
