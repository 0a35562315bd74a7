"""An approval request or notification on a down broker takes at most the publisher's deadline (it runs in a lane's
chunk, or under the exclusive gate a rebalance waits for), and a request Kafka did not take loses no step: it stays
parked and its timeout still reaches a human (responder/ingest/approvals.py, responder/engine/approvals.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import NotLeaderForPartitionError
from structlog.testing import capture_logs

from responder.errors import BrokerUnavailable
from responder.ingest.approvals import KafkaPublisher
from tests.fakes import MetadataClient
from tests.kit import Kit, make_kit
from tests.unit.test_escalation_gaps import TIMED, _told


class _DownProducer:
    """A producer on a down broker: each send hangs (`hang`) or fails as the leader is gone."""

    def __init__(self, hang: bool) -> None:
        self.hang, self.client, self.sends = hang, MetadataClient(), 0

    async def send_and_wait(self, *_: Any, **__: Any) -> None:
        self.sends += 1
        if self.hang:
            await asyncio.Event().wait()
        raise NotLeaderForPartitionError()


@pytest.mark.parametrize("hang", [True, False])
async def test_a_publication_on_a_down_broker_gives_up_at_the_deadline(hang: bool) -> None:
    """A send that never answers, or fails as the leader is gone again and again: BrokerUnavailable at the deadline."""
    publisher = KafkaPublisher("127.0.0.1:1")
    await publisher.producer.stop()
    publisher.producer = _DownProducer(hang)  # type: ignore[assignment]
    publisher.deadline = 0.3
    with pytest.raises(BrokerUnavailable, match=r"within 0\.3s"):
        await asyncio.wait_for(publisher.publish("responder.approvals.requests", b"k", b"{}"), 3.0)


def _down(kit: Kit) -> None:
    async def refused(*_: Any, **__: Any) -> None:
        raise BrokerUnavailable("Kafka did not acknowledge a record within 20s")

    kit.publisher.publish = refused  # type: ignore[method-assign]


async def _lapse(kit: Kit) -> None:
    kit.clock.now += 61
    await kit.engine.expire()
    await kit.engine.recorder.flush()


async def test_a_request_kafka_did_not_take_leaves_the_step_parked_and_its_timeout_reaches_a_human(tmp_path) -> None:
    """The request is not sent (logged `approval_request_unsent`), the event is handled, the step stays parked; at
    its deadline it is asked again (`on_timeout: escalate`), not sent either, and the next lapse pages on-call."""
    kit = make_kit(tmp_path, {"rb": TIMED % "escalate"})
    _down(kit)
    with capture_logs() as logs:
        await kit.send()
    assert [p.step for p in kit.engine.state.parked_steps()] == ["deactivate"]
    assert [e["event"] for e in logs].count("approval_request_unsent") == 1
    await _lapse(kit)
    assert [p.step for p in kit.engine.state.parked_steps()] == ["deactivate"]  # escalated, still waiting
    await _lapse(kit)
    assert _told(kit) == [("oncall", "deactivate failed")]

