"""Two writes of one key to one changelog partition land in the order they were made, whatever is sent again: a slice
whose ack fails transiently while its incident's tombstone is written is resent before that tombstone, never after
it (compaction keeps the last record per key, so a slice after its tombstone would bring the evicted incident back
at the next restore). Without transactions `Changelog.write` runs one write of a partition at a time; with them
`Transactions.write` does (responder/ingest/changelog.py, responder/ingest/transactions.py, docs/fleet.md)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError

from responder.engine.snapshot import EngineSnapshot
from responder.ingest.changelog import Changelog
from responder.ingest.transactions import Transactions
from tests.fakes import MetadataClient
from tests.txn_kit import FakeTxnProducer, fake_transactions

SLICE = EngineSnapshot().model_dump_json().encode()


class _LateFailure:
    """The ack of the first record sent with key `late` stays pending until the test fails it (`fail`): a batch
    aiokafka gives up only after its expiry, while other writes go on."""

    late = b"inc-1"

    def __init__(self) -> None:
        self.pending: asyncio.Future[Any] | None = None

    def ack(self, key: bytes) -> asyncio.Future[Any]:
        ack: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if key == self.late and self.pending is None:
            self.pending = ack
        else:
            ack.set_result(None)
        return ack

    async def fail(self) -> None:
        """Once the late record was sent, let the other writes run, then fail its ack with a transient error."""
        async with asyncio.timeout(5):
            while self.pending is None:
                await asyncio.sleep(0)
        for _ in range(20):
            await asyncio.sleep(0)
        self.pending.set_exception(KafkaTimeoutError())


class _Producer(_LateFailure):
    """A plain producer: `log` is the partition, the records acknowledged in order (key, value)."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[bytes, bytes | None]] = []
        self.client = MetadataClient()

    async def send(self, topic: str, value: bytes | None, *, key: bytes, partition: int) -> asyncio.Future[Any]:
        ack = self.ack(key)
        if ack.done():
            self.log.append((key, value))
        else:  # the record lands only if its ack succeeds (here it fails: it is lost, and sent again)
            ack.add_done_callback(lambda done: None if done.exception() else self.log.append((key, value)))
        return ack

    async def stop(self) -> None: ...


class _TxnProducer(_LateFailure, FakeTxnProducer):
    """A transactional producer: `log` is the records of the committed transactions, in commit order. The late
    record's `send()` itself waits, then raises (aiokafka's send waiting for the partition's metadata)."""

    def __init__(self, **kwargs: Any) -> None:
        FakeTxnProducer.__init__(self, **kwargs)
        _LateFailure.__init__(self)
        self.log: list[tuple[bytes, bytes | None]] = []
        self._records: list[tuple[bytes, bytes | None]] = []

    async def begin_transaction(self) -> None:
        await super().begin_transaction()
        self._records = []

    async def send(self, topic: str, value: bytes | None, *, key: bytes, partition: int) -> asyncio.Future[Any]:
        assert self.open is not None, "send outside a transaction"
        ack = self.ack(key)
        await ack  # the late record's send raises here, before the record is in the transaction
        self._records.append((key, value))
        return ack

    async def commit_transaction(self) -> None:
        await super().commit_transaction()
        self.log += self._records


def _last(log: list[tuple[bytes, bytes | None]], key: bytes) -> bytes | None:
    """What compaction keeps of `key`: its last record's value."""
    return [value for k, value in log if k == key][-1]


async def test_a_slice_resent_after_a_transient_failure_lands_before_the_tombstone_written_meanwhile() -> None:
    """Without transactions, a slice resent after a transient failure lands before the tombstone written meanwhile."""
    producer = _Producer()
    changelog = Changelog("127.0.0.1:1", "changelog")
    await changelog.producer.stop()
    changelog.producer = producer
    flush = asyncio.create_task(changelog.write(0, {"inc-1": EngineSnapshot(), "inc-2": EngineSnapshot()}))
    evict = asyncio.create_task(changelog.write(0, {"inc-1": None}))
    async with asyncio.timeout(10):
        await asyncio.gather(flush, evict, producer.fail())
    assert [key for key, _ in producer.log] == [b"inc-2", b"inc-1", b"inc-2", b"inc-1"]  # the flush's, resent whole
    assert _last(producer.log, b"inc-1") is None


async def test_with_transactions_a_slice_run_again_lands_before_the_tombstone_written_meanwhile(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With transactions, a slice's rerun transaction commits before the tombstone's, so the incident stays evicted."""
    txn: Transactions = await fake_transactions(monkeypatch, [0], _TxnProducer)
    producer = txn.producers[0]
    assert isinstance(producer, _TxnProducer)
    flush = asyncio.create_task(txn.write(0, [(b"inc-1", SLICE)], urgent=True))
    evict = asyncio.create_task(txn.write(0, [(b"inc-1", None)]))
    async with asyncio.timeout(10):
        await asyncio.gather(flush, evict, producer.fail())
    assert producer.log == [(b"inc-1", SLICE), (b"inc-1", None)]
