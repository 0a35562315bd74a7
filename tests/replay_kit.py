"""A dead-letter replay without Kafka: dead letters as its consumer reads them, a producer recording what it sends (or
failing the sends it is told to), the ledger an earlier replay left, and the replay's clients faked around them
(tests/unit/test_deadletter_replay_send.py, tests/unit/test_deadletter_replay_once.py); each target's configuration is
described by a fake admin client (`ConfigAdmin`, tests/unit/test_deadletter_replay_age.py)."""

from __future__ import annotations

from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any

import pytest

from responder.ingest import deadletter, replayage
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


KEEPS_ALL = {"retention.ms": "-1", "cleanup.policy": "delete", "message.timestamp.type": "CreateTime"}


class ConfigAdmin:
    """An admin client describing every topic with `configs` and DescribeConfigs error `code` (3: no such topic,
    then the broker is described with `broker`), or raising `error`, or answering `answers` as they are (an answer of
    another shape, for the replay's own parser); `asked` lists the resources described."""

    def __init__(self, configs: dict[str, str | None] | None = None, *, code: int = 0,
                 broker: dict[str, str | None] | None = None, error: Exception | None = None,
                 answers: list[Any] | None = None) -> None:
        self.configs = KEEPS_ALL if configs is None else configs
        self.code, self.broker, self.error, self.answers = code, broker, error, answers
        self.asked: list[str] = []

    async def describe_configs(self, resources: list[Any]) -> list[Any]:
        """One answer for the one resource asked (`answers` when given): the broker's defaults for a broker, else the
        topic's."""
        [resource] = resources
        self.asked.append(resource.name)
        if self.error is not None:
            raise self.error
        if self.answers is not None:
            return self.answers
        is_topic = resource.resource_type == replayage.ConfigResourceType.TOPIC
        configs, code = (self.configs, self.code) if is_topic else (self.broker or {}, 0)
        entries = [(name, value, False, False, False) for name, value in configs.items()]
        return [SimpleNamespace(resources=[(code, None, resource.resource_type, resource.name, entries)])]

    async def describe_cluster(self) -> dict[str, Any]:
        """One broker, node 1."""
        return {"brokers": [{"node_id": 1, "host": "127.0.0.1", "port": 1}]}


def fake_replay(monkeypatch: pytest.MonkeyPatch, producer: ReplayProducer, records: Iterable[Any] | None = None,
                ledger: Iterable[bytes] = (), admin: ConfigAdmin | None = None) -> None:
    """Fake the replay's clients: its consumer reads `records` (by default dead letters dlq:0:5..7, naming no
    original) in one batch, the ledger holds `ledger`, `producer` sends and `admin` (by default one describing every
    target as keeping its records forever) answers the read of each target's configuration."""
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
    describer = admin or ConfigAdmin()

    async def with_admin(_: str, call: Any, **__: Any) -> Any:
        return await call(describer)

    monkeypatch.setattr(replayage, "with_admin", with_admin)
