"""A dead-letter replay without Kafka: dead letters as its consumer reads them, a producer recording what it sends (or
failing the sends it is told to), the ledger an earlier replay left, and the replay's clients faked around them
(tests/unit/test_deadletter_replay_send.py, tests/unit/test_deadletter_replay_once.py)."""

from __future__ import annotations

from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any

import pytest

from responder.ingest import deadletter
from tests.fakes import MetadataClient


def dead_letter(offset: int, *, original: tuple[int, int] | None = None, reason: bytes = b"authentication",
                value: bytes | None = None, timestamp_ms: int | None = None) -> SimpleNamespace:
    """Dead letter dlq:0:`offset` of a record of topic `alerts`; `original` (partition, offset) names that record
    (`dlq.partition`, `dlq.offset`), and its value is by default that record's (`v<its offset>`, else
    `v<offset>`): the copies of one record name the same one and hold the same bytes. `timestamp_ms`: the record's
    broker time (`dlq.timestamp`)."""
    where = [] if original is None else [("dlq.partition", b"%d" % original[0]), ("dlq.offset", b"%d" % original[1])]
    stamp = [] if timestamp_ms is None else [("dlq.timestamp", b"%d" % timestamp_ms)]
    default = b"v%d" % (offset if original is None else original[1])
    return SimpleNamespace(topic="dlq", partition=0, offset=offset, key=b"k", value=default if value is None else value,
                           headers=[("dlq.reason", reason), ("dlq.topic", b"alerts"), *where, *stamp])


class ReplayProducer:
    """`send_and_wait` raises `failures[(topic, n)]` for the n-th send to a topic (first = 0), else records it."""

    def __init__(self, failures: dict[tuple[str, int], list[Exception]] | None = None) -> None:
        self.failures, self.client = failures or {}, MetadataClient()
        self.sent: list[tuple[str, bytes]] = []
        self.keys: list[tuple[str, bytes | None]] = []
        self.calls: dict[str, int] = {}

    async def send_and_wait(self, topic: str, value: bytes, *, key: bytes | None = None, **_: Any) -> None:
        """Fail as `failures` says, else record topic, value and key."""
        n = sum(1 for t, _ in self.sent if t == topic)
        self.calls[topic] = self.calls.get(topic, 0) + 1
        queued = self.failures.get((topic, n))
        if queued:
            raise queued.pop(0)
        self.sent.append((topic, value))
        self.keys.append((topic, key))

    def to(self, topic: str) -> list[bytes]:
        """The values sent to `topic`, in order."""
        return [v for t, v in self.sent if t == topic]

    def noted(self, ledger_topic: str = "dlq.replayed") -> set[bytes]:
        """The ledger keys noted: what the next replay reads back from the ledger."""
        return {k for t, k in self.keys if t == ledger_topic and k is not None}

    async def stop(self) -> None:
        """Nothing to close."""


def fake_replay(monkeypatch: pytest.MonkeyPatch, producer: ReplayProducer, records: Iterable[Any] | None = None,
                ledger: Iterable[bytes] = ()) -> None:
    """Fake the replay's clients: its consumer reads `records` (by default dead letters dlq:0:5..7, naming no
    original) in one batch, the ledger holds `ledger`, and `producer` sends."""
    batch = [dead_letter(o) for o in (5, 6, 7)] if records is None else list(records)
    noted = set(ledger)

    class Consumer:
        def __init__(self, *_: Any, **__: Any) -> None:
            self.batches = [{"tp": batch}]

        async def stop(self) -> None:
            """Nothing to close."""

    async def nothing(*_: Any, **__: Any) -> None:
        return None

    async def read_ledger(*_: Any, **__: Any) -> set[bytes]:
        return set(noted)

    async def getmany(consumer: Consumer, **_: Any) -> dict[str, list[Any]]:
        return consumer.batches.pop(0) if consumer.batches else {}

    for name, value in (("check_connection", nothing), ("_ledger", read_ledger), ("_start_with_retry", nothing),
                        ("getmany_past", getmany), ("AIOKafkaConsumer", Consumer),
                        ("AIOKafkaProducer", lambda **_: producer)):
        monkeypatch.setattr(deadletter, name, value)
