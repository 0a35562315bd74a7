"""A partition's transactional producer gets its producer id in its start (InitProducerId, from the transaction
coordinator), and aiokafka 0.14 waits for it with no limit: `_start_with_retry`'s deadline ends its retries between
attempts, never an attempt under way, so a restore whose transaction coordinator was never found waited for ever, the
partition held and never consumed, never retried. The start is cut at its deadline: BrokerUnreachable, and the restore
is retried (responder/ingest/transactions.py, `FleetState.fetch`). Once started, a producer keeps its id: its
`begin_transaction` never waits (tests/unit/test_transactions_outage.py gets past it in a full outage)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from responder.errors import BrokerUnreachable
from responder.ingest import transactions as transactions_module
from responder.ingest.transactions import Transactions
from tests.txn_kit import NoProducerIdProducer


async def test_a_start_whose_transaction_coordinator_is_never_found_fails_at_its_deadline(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A start that never gets its producer id is cut at the deadline: BrokerUnreachable naming its wait, closed."""
    made: list[NoProducerIdProducer] = []

    def producer(**kwargs: Any) -> NoProducerIdProducer:
        made.append(NoProducerIdProducer(**kwargs))
        return made[-1]

    monkeypatch.setattr(transactions_module, "AIOKafkaProducer", producer)
    txn = Transactions("127.0.0.1:1", "changelog", "group")
    with pytest.raises(BrokerUnreachable, match="transaction coordinator") as raised:
        await asyncio.wait_for(txn.assign([0], deadline=0.3), 3.0)  # a hang guard
    assert "a transactional producer's fixed 0.3s deadline, not RESPONDER_KAFKA_CONNECT_TIMEOUT, sets the wait" in (
        str(raised.value))
    (started,) = made
    assert started.tries > 0  # it looked for the coordinator
    assert txn.producers == {}
    assert started._closed
    looked = started.tries
    await asyncio.sleep(0.1)
    assert started.tries == looked  # nothing left looking for it
