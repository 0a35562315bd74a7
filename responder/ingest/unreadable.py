"""`getmany_past`: a poll that reads past the records aiokafka cannot parse, losing none of the others.

When `getmany()` raises while it parses a fetch (see `responder.ingest.recordbatch`), the records it had already
taken from other partitions are lost with the call, and the position of the partition it failed on stays before
the record: every later poll raises again. So, on that error only:

1. the partition that raised is found (its buffered result's record generator ended with the error);
2. every partition the failed poll moved is set back: to where it stood before the poll, or, when the poll
   started it (a first poll, a new assignment), to its committed offset or the reset policy's earliest (those
   records are fetched again: nothing is lost, as the poll never returned them);
3. the unpaused partitions asked for are fetched once more, by this module, from their leaders, and read with
   the tolerant reader, the partition that raised first, whole batches, until `max_records`: good records come
   out as `Read`, the bad ones as `Unreadable` in their place;
4. unless a rebalance came meanwhile (then nothing is returned and the next poll starts over), each partition
   read is moved past the batches read, and the poll returns them.

The caller dead-letters each `Unreadable` (its bytes and reason) and commits it like any other record. A batch
holds one producer's records; only a malformed record, or a whole batch that fails its CRC or cannot be
decompressed, is ever an `Unreadable`. When `STALLS` second reads in a row do not move the partition that raised
(its leader gone, the broker refusing the fetch), the poll stops with `UnparsableRecord`, naming where each
partition stood; a read_committed consumer stops at once (aborted transactions are not read here). aiokafka's
private state is read here (positions, buffered results, leaders, fetch sizes) and one counter is written (its
fetch count, which `fetch_context` leaves raised after an error), with aiokafka pinned below 0.15.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import weakref
from collections import defaultdict
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CorruptRecordException, IllegalStateError, KafkaError, UnsupportedCodecError
from aiokafka.protocol.fetch import FetchRequest

from responder.errors import UnparsableRecord
from responder.ingest.recordbatch import Read, Unreadable, read_fetched

__all__ = ["Read", "Unreadable", "getmany_past", "positions", "readable", "unparsable"]

log = structlog.get_logger(__name__)

_PARSE_ERRORS = (UnicodeDecodeError, CorruptRecordException, UnsupportedCodecError)
_READ_UNCOMMITTED, _EARLIEST = 0, -2  # aiokafka's isolation level and OffsetResetStrategy.EARLIEST


def positions(consumer: AIOKafkaConsumer) -> tuple[Any, dict[TopicPartition, int]]:
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


STALLS = 5  # second reads in a row, under one assignment, that do not move the partition that raised: then stop
_stalls: weakref.WeakKeyDictionary[Any, tuple[Any, int]] = weakref.WeakKeyDictionary()  # consumer → them so far


async def getmany_past(consumer: AIOKafkaConsumer, *partitions: TopicPartition, timeout_ms: int,
                       max_records: int) -> dict[TopicPartition, list[Any]]:
    """`consumer.getmany(...)`; when it cannot parse what it fetched, the same partitions read by
    `responder.ingest.recordbatch` instead (records, and `Unreadable` in place of what cannot be parsed)."""
    before_assignment, before = positions(consumer)
    try:
        got: dict[TopicPartition, list[Any]] = await consumer.getmany(*partitions, timeout_ms=timeout_ms,
                                                                      max_records=max_records)
        return got
    except _PARSE_ERRORS as exc:
        error: Exception = exc
    subscription = consumer._subscription
    subscription._fetch_count = max(0, subscription._fetch_count - 1)  # aiokafka's fetch_context has no finally:
    if subscription._fetch_count == 0:  # what its end would have done, or the poll-interval check never fires
        subscription._last_fetch_ended = time.monotonic()
    culprit = _raised(consumer)  # before any seek: a seek drops the fetcher's buffered result
    if consumer._fetcher._isolation_level != _READ_UNCOMMITTED:  # aborted transactions are not read here
        raise unparsable(consumer, error) from error
    assignment, now = positions(consumer)
    given_back = await _give_back(consumer, assignment, before if assignment is before_assignment else {}, now, error)
    if given_back is None:
        return {}  # a rebalance while the starts were looked up: positions come from the committed offsets again
    now, advanced = given_back
    wanted, paused = set(partitions) if partitions else set(now), consumer.paused()
    todo = sorted((tp for tp in now if tp in wanted and tp not in paused),  # the one that raised first, within
                  key=lambda tp: (tp != culprit, tp in advanced, tp.topic, tp.partition))  # `max_records`
    read = await _read_again(consumer, {tp: now[tp] for tp in todo}, max_records)
    if positions(consumer)[0] is not assignment or not assignment.active or subscription.reassignment_in_progress:
        return {}  # a rebalance while reading again: what was read may not be ours; the next poll starts over
    for tp, (records, after) in read.items():
        if after > now[tp]:
            consumer.seek(tp, after)
        for record in records:
            if isinstance(record, Unreadable):
                log.error("record_unreadable", topic=tp.topic, partition=tp.partition, offset=record.offset,
                          first=record.first, error=record.error, client_error=repr(error))
    _check_progress(consumer, culprit, now, read, error)
    return {tp: records for tp, (records, _) in read.items() if records}


def readable(batch: dict[TopicPartition, list[Any]]) -> tuple[list[Any], int]:
    """A `getmany_past` batch's records that the client could parse, in order, and how many it could not (each
    already logged as `record_unreadable`), for a reader that has no dead-letter path of its own."""
    records = [m for msgs in batch.values() for m in msgs]
    kept = [m for m in records if not isinstance(m, Unreadable)]
    return kept, len(records) - len(kept)


def _raised(consumer: AIOKafkaConsumer) -> TopicPartition | None:
    """The partition whose records the failed poll was parsing: its buffered result's record generator ended by
    the error (a drained result is removed, an untouched or partly taken one is still suspended)."""
    for tp, result in consumer._fetcher._records.items():
        records = getattr(result, "_partition_records", None)
        iterator = getattr(records, "_records_iterator", None)
        if iterator is not None and inspect.isgenerator(iterator) and \
                inspect.getgeneratorstate(iterator) == inspect.GEN_CLOSED:
            return tp
    return None


async def _give_back(consumer: AIOKafkaConsumer, assignment: Any, before: dict[TopicPartition, int],
                     now: dict[TopicPartition, int],
                     error: Exception) -> tuple[dict[TopicPartition, int], set[TopicPartition]] | None:
    """Set back each partition the failed poll moved (its records went down with it): to where it stood before
    the poll, or, for a partition it started (a new assignment, a first poll), to where it started, its committed
    offset or the reset policy's earliest; the positions now, and the partitions that had moved. None when a
    rebalance came while the starts were looked up (nothing is set back then: that assignment starts afresh).
    A start that cannot be learned stops the consumer (`UnparsableRecord`): a position the poll moved is never
    kept, as the records it passed were handed to no one."""
    starts = dict(before)
    unknown = [tp for tp in now if tp not in before]
    if unknown:
        try:
            starts.update(await _starts_of(consumer, unknown))
        except (KafkaError, IllegalStateError, TimeoutError, LookupError) as exc:
            log.error("unreadable_start_unknown", partitions=[f"{tp.topic}[{tp.partition}]" for tp in unknown],
                      error=repr(exc))
            raise unparsable(consumer, error) from exc
    if positions(consumer)[0] is not assignment:  # no await from here on: the assignment is the one read
        return None
    advanced = {tp for tp, offset in now.items() if offset > starts[tp]}
    for tp in advanced:
        consumer.seek(tp, starts[tp])
    return {tp: min(offset, starts[tp]) for tp, offset in now.items()}, advanced


async def _starts_of(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    """Where each partition's consumption starts: its committed offset, else the earliest offset under that reset
    policy; one lookup of each kind, within 10 s. LookupError for a partition whose start cannot be known."""
    out: dict[TopicPartition, int] = {}
    async with asyncio.timeout(10):
        if consumer._group_id is not None:
            committed = await consumer._coordinator.fetch_committed_offsets(tps)
            out = {tp: int(meta.offset) for tp, meta in committed.items() if meta is not None and meta.offset >= 0}
        rest = [tp for tp in tps if tp not in out]
        if rest and consumer._fetcher._default_reset_strategy != _EARLIEST:
            raise LookupError(f"no committed offset, and the reset policy is not earliest: {rest}")
        if rest:
            out.update({tp: int(offset) for tp, offset in (await consumer.beginning_offsets(rest)).items()})
    return out


def _check_progress(consumer: AIOKafkaConsumer, culprit: TopicPartition | None, now: dict[TopicPartition, int],
                    read: dict[TopicPartition, tuple[list[Read | Unreadable], int]], error: Exception) -> None:
    """Stop with `UnparsableRecord` once `STALLS` second reads in a row have not moved the partition that raised
    (or, when it is not known, any partition): a leader gone for a moment is waited for, a read that can never
    get past the record is not. A culprit left where it was is seeked there, dropping aiokafka's ended result."""
    moved = culprit in read and read[culprit][1] > now[culprit] if culprit is not None else \
        any(after > now[tp] for tp, (_, after) in read.items())
    if moved:
        _stalls.pop(consumer, None)
        return
    if culprit is not None and culprit in now and culprit in consumer.assignment():
        consumer.seek(culprit, now[culprit])
    assignment = positions(consumer)[0]
    was, count = _stalls.get(consumer, (None, 0))
    count = count + 1 if was is assignment else 1  # a new assignment starts the count again
    _stalls[consumer] = (assignment, count)
    log.warning("unreadable_reread_stalled", partition=f"{culprit.topic}[{culprit.partition}]" if culprit else None,
                position=now.get(culprit, -1) if culprit else -1, attempt=count, limit=STALLS)
    if count >= STALLS:
        _stalls.pop(consumer, None)
        raise unparsable(consumer, error) from error


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
    fetched: dict[TopicPartition, tuple[bytes, int]] = {}
    for leader, tps in by_leader.items():
        topics: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
        for tp in tps:
            topics[tp.topic].append((tp.partition, positions[tp], fetcher._max_partition_fetch_bytes))
        request = FetchRequest(0, 1, fetcher._fetch_max_bytes, _READ_UNCOMMITTED, list(topics.items()))
        try:
            response = await client.send(leader, request)
        except KafkaError as exc:
            log.warning("unreadable_reread_failed", leader=leader, error=repr(exc))
            continue
        for topic, parts in response.topics:
            for partition, error_code, high, *rest in parts:
                if error_code == 0:
                    fetched[TopicPartition(topic, partition)] = (rest[-1] or b"", high)
                else:
                    log.warning("unreadable_reread_refused", topic=topic, partition=partition, error_code=error_code)
    out: dict[TopicPartition, tuple[list[Read | Unreadable], int]] = {}
    left = most
    for tp, position in positions.items():
        if left > 0 and tp in fetched:
            buf, high = fetched[tp]
            out[tp] = read_fetched(tp.topic, tp.partition, buf, position, left, high)
            left -= len(out[tp][0])
    return out


def unparsable(consumer: AIOKafkaConsumer, exc: Exception) -> UnparsableRecord:
    """The error to stop with when neither aiokafka nor the tolerant reader gets past a record, logged with where
    each partition stood (`?`: no position yet): the record is at or after one of those offsets."""
    standing = positions(consumer)[1]
    where = [f"{tp.topic}[{tp.partition}]@{standing.get(tp, '?')}"
             for tp in sorted(consumer.assignment(), key=lambda t: (t.topic, t.partition))]
    detail = ("a record the Kafka client cannot parse stops this consumer, and reading the fetch again did not get "
              "past it; find it at or after these offsets, and move the consumer group past it "
              "(docs/faults.md, 'A record the Kafka client cannot parse')")
    log.critical("record_unparsable", error=repr(exc), positions=where, detail=detail)
    return UnparsableRecord(f"{detail}: {', '.join(where)} ({exc!r})")
