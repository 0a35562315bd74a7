"""Changelog producers without Kafka: transactional ones that record or fail their transactions (`fake_transactions`
puts them under a `Transactions`), aiokafka's own whose group coordinator is never found or lost, or that no broker
answers, and a plain one whose acks fail, under a changelog of its own; what asyncio complains of meanwhile
(`loop_complaints`)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.client import CoordinationType
from aiokafka.errors import CoordinatorNotAvailableError, KafkaConnectionError, NodeNotReadyError
from aiokafka.protocol.metadata import MetadataResponse_v0
from aiokafka.protocol.transaction import (
    AddPartitionsToTxnRequest,
    AddPartitionsToTxnRequest_v0,
    AddPartitionsToTxnResponse_v0,
)

from responder.ingest import transactions as transactions_module
from responder.ingest.changelog import Changelog
from responder.ingest.transactions import Transactions
from tests.fakes import MetadataClient


class FakeTxnProducer:
    """An in-memory transactional producer: records each committed transaction's records and offsets."""

    def __init__(self, *, transactional_id: str, **_: Any) -> None:
        self.transactional_id = transactional_id
        self.open: dict[str, Any] | None = None
        self.committed: list[dict[str, Any]] = []
        self.gate: asyncio.Event | None = None  # when set, commit_transaction waits for it

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def begin_transaction(self) -> None:
        assert self.open is None, "a transaction is open already"
        self.open = {"records": [], "offsets": {}}

    async def send(self, topic: str, value: bytes | None, *, key: bytes, partition: int) -> asyncio.Future[None]:
        assert self.open is not None, "send outside a transaction"
        self.open["records"].append(key)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def send_offsets_to_transaction(self, offsets: dict[TopicPartition, int], group_id: str) -> None:
        assert self.open is not None
        self.open["offsets"].update(offsets)

    async def commit_transaction(self) -> None:
        if self.gate is not None:
            await self.gate.wait()
        assert self.open is not None
        self.committed.append(self.open)
        self.open = None

    async def abort_transaction(self) -> None:
        self.open = None


async def fake_transactions(monkeypatch: pytest.MonkeyPatch, partitions: list[int],
                            producer: type[FakeTxnProducer] = FakeTxnProducer) -> Transactions:
    """Transactions over in-memory producers (`producer`) for `partitions`."""
    async def start(made: FakeTxnProducer, deadline: float, **_: Any) -> None:
        await made.start()

    monkeypatch.setattr(transactions_module, "AIOKafkaProducer", producer)
    monkeypatch.setattr(transactions_module, "_start_with_retry", start)
    txn = Transactions("127.0.0.1:1", "changelog", "group")
    await txn.assign(partitions)
    return txn


class FailingAcksProducer:
    """A plain producer whose sends' acks fail with `failures`, one send each, before any is acknowledged."""

    def __init__(self, failures: list[Exception]) -> None:
        self.failures, self.log, self.client = failures, [], MetadataClient()

    async def send(self, topic: str, value: bytes | None, *, key: bytes, partition: int) -> asyncio.Future[Any]:
        ack: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.failures:
            ack.set_exception(self.failures.pop(0))
        else:
            self.log.append((partition, key, value))
            ack.set_result(None)
        return ack

    async def stop(self) -> None: ...


async def changelog_sending_with(producer: FailingAcksProducer) -> Changelog:
    """A changelog whose producer is `producer` (its own stopped unstarted)."""
    changelog = Changelog("127.0.0.1:1", "changelog")
    await changelog.producer.stop()
    changelog.producer = producer  # type: ignore[assignment]
    return changelog


class FailingTxnProducer(FakeTxnProducer):
    """A transactional producer whose next sends raise `failures` (before the record is queued) and which keeps the
    aborted transactions."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.failures: list[Exception] = []
        self.aborted: list[dict[str, Any]] = []

    async def send(self, topic: str, value: bytes | None, *, key: bytes, partition: int) -> asyncio.Future[None]:
        if self.failures:
            raise self.failures.pop(0)
        return await super().send(topic, value, key=key, partition=partition)

    async def abort_transaction(self) -> None:
        assert self.open is not None, "no transaction to abort"
        self.aborted.append(self.open)
        self.open = None


class LostGroupProducer(AIOKafkaProducer):  # type: ignore[misc]  # aiokafka is untyped
    """aiokafka 0.14's transactional producer, its own sender and transaction manager, over a client with no broker:
    the transaction coordinator answers every request (AddOffsetsToTxn, EndTxn) with no error, and the group
    coordinator is never found (FindCoordinator: CoordinatorNotAvailable, for ever), so a TxnOffsetCommit waits."""

    def __init__(self, *, transactional_id: str, **_: Any) -> None:
        super().__init__(bootstrap_servers="127.0.0.1:1", transactional_id=transactional_id, retry_backoff_ms=10)
        self.group_lookups = 0
        self.client.bootstrap = self._nothing
        self.client.ready = self._ready
        self.client.send = self._answered
        self.client.coordinator_lookup = self._lookup
        self.client.force_metadata_update = self._refreshed
        self._txn_manager.set_pid_and_epoch(1, 0)  # InitProducerId done

    async def _nothing(self) -> None: ...

    async def _ready(self, *_: Any, **__: Any) -> bool:
        return True

    async def _answered(self, *_: Any, **__: Any) -> Any:
        return type("NoError", (), {"error_code": 0})()

    async def _lookup(self, kind: Any, key: str) -> int:
        if kind == CoordinationType.GROUP:
            self.group_lookups += 1
            raise CoordinatorNotAvailableError()
        return 0

    def _refreshed(self) -> asyncio.Future[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class GroupLostProducer(LostGroupProducer):
    """The same, but the group coordinator's lookup loses its connection (a killed broker's reset): aiokafka 0.14's
    sender routine ends for good ("Unexpected error during batch delivery"), failing the open transaction."""

    async def _lookup(self, kind: Any, key: str) -> int:
        if kind == CoordinationType.GROUP:
            self.group_lookups += 1
            raise KafkaConnectionError("Connection at 127.0.0.1 closed (reset by the killed broker)")
        return 0


@contextlib.contextmanager
def loop_complaints() -> Iterator[list[str]]:
    """The messages asyncio's exception handler is given in the block ("Future exception was never retrieved",
    "Exception in callback …"), what was left unreferenced collected at its end."""
    loop = asyncio.get_running_loop()
    said: list[str] = []
    handler = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: said.append(context["message"]))
    try:
        yield said
        gc.collect()
    finally:
        loop.set_exception_handler(handler)


class OutageProducer(AIOKafkaProducer):  # type: ignore[misc]  # aiokafka is untyped
    """aiokafka 0.14's transactional producer, started (its producer id known), in a full outage: its metadata still
    names node 0 the leader of the changelog's partitions 0-3, and no broker answers. Its transaction coordinator is
    never found (FindCoordinator: NodeNotReady, for ever), so a record waits for its partition's addition to the
    transaction; its batch's expiry (the 0.1 s request timeout) never comes for a transactional producer. A record that
    does not fit in the partition's last batch waits up to that request timeout (`request_timeout_ms`) to be queued."""

    pid_known = True  # InitProducerId done
    request_timeout_ms = 100  # aiokafka's: also how long a record waits to be queued behind a full, unsent batch

    def __init__(self, *, transactional_id: str, **_: Any) -> None:
        super().__init__(bootstrap_servers="127.0.0.1:1", transactional_id=transactional_id, retry_backoff_ms=10,
                         request_timeout_ms=self.request_timeout_ms)
        self.tries = 0  # lookups and requests no broker answered
        self.client.bootstrap = self._nothing
        self.client.ready = self._ready
        self.client.send = self._send
        self.client.coordinator_lookup = self._lookup
        self.client.force_metadata_update = self._refreshed
        self.client.cluster.update_metadata(MetadataResponse_v0(
            [(0, "127.0.0.1", 1)], [(0, "changelog", [(0, p, 0, [0], [0]) for p in range(4)])]))
        if self.pid_known:
            self._txn_manager.set_pid_and_epoch(1, 0)

    async def _nothing(self) -> None: ...

    async def _ready(self, *_: Any, **__: Any) -> bool:
        return True

    async def _send(self, node_id: int, request: Any, **_: Any) -> Any:
        self.tries += 1
        raise NodeNotReadyError(node_id)

    async def _lookup(self, kind: Any, key: str) -> int:
        self.tries += 1
        raise NodeNotReadyError(0)

    def _refreshed(self) -> asyncio.Future[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class NoProducerIdProducer(OutageProducer):
    """The same before its start: it has no producer id yet, and its start looks for the transaction coordinator to
    ask for one (`Sender._maybe_wait_for_pid`) for ever."""

    pid_known = False


class LeaderDownProducer(OutageProducer):
    """The same, but its transaction coordinator (node 0) answers and adds the partition to the transaction; the
    partition's leader never answers a produce request (NodeNotReady), which aiokafka resends for ever."""

    async def _send(self, node_id: int, request: Any, **_: Any) -> Any:
        if isinstance(request, AddPartitionsToTxnRequest):
            topics = request.build(AddPartitionsToTxnRequest_v0).topics
            return AddPartitionsToTxnResponse_v0(0, [(topic, [(p, 0) for p in parts]) for topic, parts in topics])
        return await super()._send(node_id, request)

    async def _lookup(self, kind: Any, key: str) -> int:
        return 0
