"""Where the alert consumer reads each partition next, kept across a rebalance that gives the partition back: its lag.

aiokafka revokes every partition at each rebalance (eagerly), also those it gives straight back: a revoked
partition's position waits for the new assignment, which forgets it (no lag of its until fetched again) or keeps it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition


class Positions:
    """The next offset to read of each partition fetched from, and the partitions revoked since the last assignment."""

    def __init__(self) -> None:
        self.next: dict[TopicPartition, int] = {}
        self._revoked: set[TopicPartition] = set()  # since the last assignment: kept or forgotten by the next one

    def polled(self, got: Mapping[TopicPartition, Sequence[Any]]) -> None:
        """A poll's records (aiokafka's, in offset order): each partition is read next past its last one."""
        for tp, msgs in got.items():
            if msgs:
                self.next[tp] = msgs[-1].offset + 1

    def revoked(self, partitions: Iterable[TopicPartition]) -> None:
        """Partitions revoked: their positions wait for the new assignment (`reassigned`)."""
        self._revoked.update(partitions)

    def reassigned(self, partitions: Iterable[TopicPartition]) -> tuple[set[TopicPartition], set[TopicPartition]]:
        """The new assignment: of the partitions revoked since the last one, those it leaves out (their positions
        forgotten: no lag of theirs until fetched again) and those it gives back (their positions kept)."""
        given = set(partitions)
        gone, back = self._revoked - given, self._revoked & given
        self._revoked.clear()
        for tp in gone:
            self.next.pop(tp, None)
        return gone, back

    def lag(self, consumer: AIOKafkaConsumer) -> dict[tuple[str, int], int]:
        """Records behind the high watermark, per partition the consumer owns and has fetched from at least once."""
        owned = consumer.assignment()
        out = {}
        for tp, position in self.next.items():
            high = consumer.highwater(tp) if tp in owned else None
            if high is not None:
                out[(tp.topic, tp.partition)] = max(0, high - position)
        return out
