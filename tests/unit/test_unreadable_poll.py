"""`getmany_past` when the client's poll raises: positions set back (unless a rebalance came), the partition that
raised read first, and one clear stop when the second read gets nowhere either."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition

from responder.errors import UnparsableRecord
from responder.ingest import unreadable
from responder.ingest.unreadable import Unreadable, getmany_past
from tests.unit.test_recordbatch import GOOD, batch

P0, P1 = TopicPartition("t", 0), TopicPartition("t", 1)
BAD = [(b"k", b"x", [(b"\xff", b"v")])]


class _State:
    def __init__(self, position: int | None) -> None:
        self.position = position

    @property
    def has_valid_position(self) -> bool:
        return self.position is not None


class _Consumer:
    """What getmany_past reads of an AIOKafkaConsumer; its poll moves `moves` by 3, then raises (as on the other
    partition's record)."""

    def __init__(self, logs: dict[TopicPartition, bytes], *, rebalance: bool = False, moves: TopicPartition = P1,
                 ) -> None:
        self.states = {P0: _State(0), P1: _State(0)}
        self.assignment_obj = SimpleNamespace(tps=set(self.states), state_value=self.states.get)
        self._subscription = SimpleNamespace(subscription=SimpleNamespace(assignment=self.assignment_obj),
                                             _fetch_count=0)
        self._fetcher = SimpleNamespace(_max_partition_fetch_bytes=1 << 20, _fetch_max_bytes=1 << 20)
        self._client = SimpleNamespace(cluster=SimpleNamespace(leader_for_partition=lambda tp: 1), send=self.send)
        self.logs, self.rebalance, self.moves, self.seeks, self.fetched = logs, rebalance, moves, [], []

    async def getmany(self, *partitions: Any, timeout_ms: int, max_records: int) -> Any:
        self._subscription._fetch_count += 1
        self.states[self.moves].position = 3
        if self.rebalance:  # a new assignment object: its positions come from the committed offsets
            self._subscription.subscription = SimpleNamespace(assignment=SimpleNamespace(
                tps=set(self.states), state_value=self.states.get))
        raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")

    async def send(self, node: int, request: Any) -> Any:
        parts = [(p, 0, 99, self.logs.get(TopicPartition(t, p), b"")) for t, ps in request.topics for p, at, _ in ps]
        self.fetched += [(p, at) for _, ps in request.topics for p, at, _ in ps]
        return SimpleNamespace(topics=[("t", parts)])

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp.partition, offset))
        self.states[tp].position = offset

    def paused(self) -> set[TopicPartition]:
        return set()

    def assignment(self) -> set[TopicPartition]:
        return set(self.states)

    async def position(self, tp: TopicPartition) -> int:
        return self.states[tp].position or 0


async def test_the_partitions_the_failed_poll_moved_are_set_back_and_read_again():
    """P1's three records, taken by the poll that raised, come out again; P0's bad record as Unreadable; both
    partitions end past what was read, and aiokafka's fetch count is given back."""
    consumer = _Consumer({P0: batch(0, BAD), P1: batch(0, GOOD)})
    got = await getmany_past(consumer, timeout_ms=10, max_records=100)  # type: ignore[arg-type]
    assert [m.offset for m in got[P1]] == [0, 1, 2]
    assert [type(m) for m in got[P0]] == [Unreadable]
    assert consumer.seeks[0] == (1, 0)
    assert (consumer.states[P0].position, consumer.states[P1].position) == (1, 3)
    assert consumer._subscription._fetch_count == 0


async def test_the_partition_that_raised_is_read_first_within_the_budget():
    """With room for one batch, P1 (which did not move, so raised) is read and P0 is left where it was set back."""
    consumer = _Consumer({P0: batch(0, GOOD), P1: batch(0, BAD)}, moves=P0)
    got = await getmany_past(consumer, timeout_ms=10, max_records=1)  # type: ignore[arg-type]
    assert list(got) == [P1]
    assert consumer.states[P0].position == 0


async def test_after_a_rebalance_no_position_is_set_back():
    """Positions that came from a new assignment are kept: setting them back could skip or repeat another
    owner's records."""
    consumer = _Consumer({P0: batch(0, BAD), P1: batch(3, GOOD)}, rebalance=True)
    got = await getmany_past(consumer, timeout_ms=10, max_records=100)  # type: ignore[arg-type]
    assert (1, 0) not in consumer.seeks
    assert [m.offset for m in got[P1]] == [3, 4, 5]


async def test_a_second_read_that_gets_nowhere_stops_with_one_error(monkeypatch: pytest.MonkeyPatch):
    """The broker gives nothing back to the second read: UnparsableRecord naming each partition's position."""
    consumer = _Consumer({})
    monkeypatch.setattr(unreadable.log, "critical", lambda *a, **k: None)
    with pytest.raises(UnparsableRecord, match=r"t\[0\]@0, t\[1\]@0"):
        await getmany_past(consumer, timeout_ms=10, max_records=100)  # type: ignore[arg-type]
