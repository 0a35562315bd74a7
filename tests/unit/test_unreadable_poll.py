"""`getmany_past` when the client's poll raises: positions set back (unless a rebalance came), the partition that
raised read first, and one clear stop when the second read gets nowhere either."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaTimeoutError

from responder.errors import UnparsableRecord
from responder.ingest import unreadable
from responder.ingest.unreadable import Unreadable, getmany_past
from tests.fakes import GOOD, batch

P0, P1 = TopicPartition("t", 0), TopicPartition("t", 1)
BAD = [(b"k", b"x", [(b"\xff", b"v")])]


class _State:
    def __init__(self, position: int | None) -> None:
        self.position = position

    @property
    def has_valid_position(self) -> bool:
        return self.position is not None


def _ended_by_an_error() -> Any:
    """A record generator as aiokafka leaves it after it raised while parsing."""
    def records() -> Any:
        raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
        yield
    gen = records()
    with pytest.raises(UnicodeDecodeError):
        next(gen)
    return gen


class _Consumer:
    """What getmany_past reads of an AIOKafkaConsumer: its poll moves `moves` by 3 (records it then loses), then
    raises on `raises`' record."""

    def __init__(self, logs: dict[TopicPartition, bytes], *, raises: TopicPartition = P0,
                 moves: TopicPartition | None = P1, rebalance: str = "", committed: int | None = None) -> None:
        self.states = {P0: _State(0), P1: _State(0)}
        self._subscription = SimpleNamespace(subscription=self._new_assignment(), _fetch_count=0,
                                             reassignment_in_progress=False)
        self._fetcher = SimpleNamespace(_max_partition_fetch_bytes=1 << 20, _fetch_max_bytes=1 << 20, _records={},
                                        _isolation_level=0, _default_reset_strategy=-2)
        self._client = SimpleNamespace(cluster=SimpleNamespace(leader_for_partition=lambda tp: 1), send=self.send)
        self._group_id = "g"
        self._coordinator = SimpleNamespace(fetch_committed_offsets=self.fetch_committed_offsets)
        self.logs, self.raises, self.moves = logs, raises, moves
        self.rebalance, self.committed_at = rebalance, committed
        self.seeks: list[tuple[int, int]] = []

    def _new_assignment(self) -> Any:
        return SimpleNamespace(assignment=SimpleNamespace(tps=set(self.states), state_value=self.states.get,
                                                          active=True))

    async def getmany(self, *partitions: Any, timeout_ms: int, max_records: int) -> Any:
        self._subscription._fetch_count += 1
        if self.moves is not None:
            self.states[self.moves].position = 3
        if self.rebalance == "during the poll":  # a new assignment object, its positions from committed offsets
            self._subscription.subscription = self._new_assignment()
        self._fetcher._records = {self.raises: SimpleNamespace(_partition_records=SimpleNamespace(
            _records_iterator=_ended_by_an_error()))}
        raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")

    async def send(self, node: int, request: Any) -> Any:
        if self.rebalance == "during the second read":
            self._subscription.subscription = self._new_assignment()
        parts = [(p, 0, 99, self.logs.get(TopicPartition(t, p), b"")) for t, ps in request.topics for p, at, _ in ps]
        return SimpleNamespace(topics=[("t", parts)])

    async def fetch_committed_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, Any]:
        if self.rebalance == "during the lookup":
            self._subscription.subscription = self._new_assignment()
        if self.rebalance == "lookup fails":
            raise KafkaTimeoutError()
        offset = -1 if self.committed_at is None else self.committed_at
        return {tp: SimpleNamespace(offset=offset) for tp in tps}

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(tps, 0)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp.partition, offset))
        self.states[tp].position = offset
        self._fetcher._records.pop(tp, None)

    def paused(self) -> set[TopicPartition]:
        return set()

    def assignment(self) -> set[TopicPartition]:
        return set(self.states)

    async def position(self, tp: TopicPartition) -> int:
        return self.states[tp].position or 0


async def _poll(consumer: _Consumer, most: int = 100) -> Any:
    return await getmany_past(consumer, timeout_ms=10, max_records=most)  # type: ignore[arg-type]


async def test_the_partitions_the_failed_poll_moved_are_set_back_and_read_again():
    """After a failed poll, P1's taken records are read again and P0's bad record comes out as Unreadable."""
    consumer = _Consumer({P0: batch(0, BAD), P1: batch(0, GOOD)})
    got = await _poll(consumer)
    assert [m.offset for m in got[P1]] == [0, 1, 2]
    assert [type(m) for m in got[P0]] == [Unreadable]
    assert consumer.seeks[0] == (1, 0)
    assert (consumer.states[P0].position, consumer.states[P1].position) == (1, 3)
    assert consumer._subscription._fetch_count == 0
    assert consumer._subscription._last_fetch_ended > 0  # aiokafka's poll-interval check goes on counting


async def test_the_partition_that_raised_is_read_first_within_the_budget():
    """With room for one batch, the partition whose records raised is read first; the other is left in place."""
    consumer = _Consumer({P0: batch(0, GOOD), P1: batch(0, BAD)}, raises=P1, moves=None)
    got = await _poll(consumer, most=1)
    assert list(got) == [P1]
    assert consumer.states[P0].position == 0


async def test_after_a_rebalance_in_the_poll_a_moved_partition_goes_back_to_its_committed_offset():
    """After a rebalance in the failed poll, a moved partition goes back to its committed offset and is re-read."""
    consumer = _Consumer({P0: batch(0, BAD), P1: batch(0, GOOD)}, rebalance="during the poll", committed=1)
    got = await _poll(consumer)
    assert (1, 1) in consumer.seeks
    assert [m.offset for m in got[P1]] == [1, 2]


async def test_a_rebalance_during_the_second_read_returns_nothing_and_moves_nothing_forward():
    """A rebalance during the second read returns nothing and moves no partition past what was read."""
    consumer = _Consumer({P0: batch(0, BAD), P1: batch(0, GOOD)}, rebalance="during the second read")
    assert await _poll(consumer) == {}
    assert consumer.seeks == [(1, 0)]


async def test_a_second_read_that_never_moves_the_partition_stops_after_the_limit(monkeypatch: pytest.MonkeyPatch):
    """A second read that never moves the partition stops after STALLS polls with UnparsableRecord."""
    monkeypatch.setattr(unreadable.log, "critical", lambda *a, **k: None)
    consumer = _Consumer({P1: batch(0, GOOD)}, moves=None)
    for _ in range(unreadable.STALLS - 1):
        await _poll(consumer)
        consumer.seek(P1, 0)
    with pytest.raises(UnparsableRecord, match=r"t\[0\]@0, t\[1\]@3"):
        await _poll(consumer)


async def test_a_read_committed_consumer_stops_at_once(monkeypatch: pytest.MonkeyPatch):
    """A read_committed consumer stops at once, since the second read does not apply aborted transactions."""
    monkeypatch.setattr(unreadable.log, "critical", lambda *a, **k: None)
    consumer = _Consumer({P0: batch(0, BAD)})
    consumer._fetcher._isolation_level = 1
    with pytest.raises(UnparsableRecord):
        await _poll(consumer)


async def test_a_first_poll_sets_a_moved_partition_back_to_the_earliest_without_a_committed_offset():
    """With no position or committed offset, the earliest policy sets a moved partition back to 0 for re-reading."""
    consumer = _Consumer({P0: batch(0, BAD), P1: batch(0, GOOD)})
    consumer.states[P1].position = None
    got = await _poll(consumer)
    assert (1, 0) in consumer.seeks
    assert [m.offset for m in got[P1]] == [0, 1, 2]


async def test_a_rebalance_while_the_starts_are_looked_up_sets_nothing_back():
    """The assignment changed during the committed-offset lookup: no seek into it, nothing returned."""
    consumer = _Consumer({P0: batch(0, BAD), P1: batch(0, GOOD)}, rebalance="during the lookup")
    consumer.states[P1].position = None
    assert await _poll(consumer) == {}
    assert consumer.seeks == []


async def test_a_start_that_cannot_be_learned_stops_rather_than_keep_a_moved_position(monkeypatch: pytest.MonkeyPatch):
    """When the committed-offset lookup fails, the consumer stops instead of keeping a partition moved past records."""
    monkeypatch.setattr(unreadable.log, "critical", lambda *a, **k: None)
    consumer = _Consumer({P0: batch(0, BAD), P1: batch(0, GOOD)}, rebalance="lookup fails")
    consumer.states[P1].position = None
    with pytest.raises(UnparsableRecord):
        await _poll(consumer)


async def test_a_new_assignment_starts_the_stall_count_again(monkeypatch: pytest.MonkeyPatch):
    """Stalls counted under one assignment do not count under the next: it takes STALLS stalls after it."""
    monkeypatch.setattr(unreadable.log, "critical", lambda *a, **k: None)
    consumer = _Consumer({P1: batch(0, GOOD)}, moves=None)
    for _ in range(unreadable.STALLS - 1):
        await _poll(consumer)
    consumer._subscription.subscription = consumer._new_assignment()
    for _ in range(unreadable.STALLS - 1):
        await _poll(consumer)
    with pytest.raises(UnparsableRecord, match=r"t\[0\]@0"):
        await _poll(consumer)


def test_the_stop_names_a_partition_without_a_position_without_waiting_for_one():
    """A partition whose start is still being looked up is shown as `?`: the stop never waits on the broker."""
    consumer = _Consumer({})
    consumer.states[P1].position = None
    error = unreadable.unparsable(consumer, ValueError("x"))  # type: ignore[arg-type]
    assert "t[0]@0, t[1]@?" in str(error)


def test_readable_keeps_the_parsed_records_in_order_and_counts_the_rest():
    """`readable` drops the Unreadable ones (already logged) and says how many there were."""
    bad = Unreadable("t", 0, 1, 1, None, None, b"x", (), "why")
    kept, dropped = unreadable.readable({P0: ["a", bad, "b"], P1: ["c"]})
    assert kept == ["a", "b", "c"]
    assert dropped == 1
