"""An approval request or notification on a down broker takes at most the publisher's deadline (it runs in a lane's
chunk, or under the exclusive gate a rebalance waits for), and a request Kafka did not take loses no step: it stays
parked and its timeout still reaches a human (responder/ingest/approvals.py, responder/engine/approvals.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from aiokafka.errors import NotLeaderForPartitionError
from structlog.testing import capture_logs

from responder.errors import BrokerUnavailable
from responder.ingest.approvals import KafkaPublisher
from responder.models.approval import REQUESTS_TOPIC
from tests.fakes import MetadataClient
from tests.kit import Kit, make_kit
from tests.unit.test_escalation_gaps import TIMED, _told
from tests.unit.test_fleet_state import _fleet_service


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


def _down(kit: Kit) -> list[int]:
    """Kafka down for `kit`'s publisher: each publication raises BrokerUnavailable (as at its deadline), counted."""
    tried: list[int] = []

    async def refused(*_: Any, **__: Any) -> None:
        tried.append(1)
        raise BrokerUnavailable("Kafka did not acknowledge a record within 20s")

    kit.publisher.publish = refused  # type: ignore[method-assign]
    return tried


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


def _requests(kit: Kit) -> list[str]:
    """The request ids published to the approval requests topic."""
    return [orjson.loads(v)["request_id"] for t, _, v in kit.publisher.sent if t == REQUESTS_TOPIC]


async def test_a_request_kafka_did_not_take_is_published_once_kafka_is_back_before_its_timeout(tmp_path) -> None:
    """Kafka down as the step parks: its request is published by the next attempt once Kafka is back (30 s after the
    failed one), before the step's timeout, and once only; an attempt that fails again waits 30 s more."""
    kit = make_kit(tmp_path, {"rb": TIMED.replace("timeout: 60,", "timeout: 600,") % "deny"})
    _down(kit)
    await kit.send()
    [parked] = kit.engine.state.parked_steps()
    kit.clock.now += 30
    assert await kit.engine.decisions.ask_again() == 0  # still down
    del kit.publisher.publish  # Kafka is back
    kit.clock.now += 29
    assert await kit.engine.decisions.ask_again() == 0  # not before 30 s from the failed attempt
    assert _requests(kit) == []
    kit.clock.now += 1
    assert await kit.engine.decisions.ask_again() == 1
    assert _requests(kit) == [parked.request_id]
    assert parked.deadline > kit.clock.now  # before its timeout
    kit.clock.now += 30
    assert await kit.engine.decisions.ask_again() == 0
    assert _requests(kit) == [parked.request_id]


async def test_a_second_step_parked_while_kafka_is_down_does_not_wait_for_the_publisher_again(tmp_path) -> None:
    """A request Kafka did not take: another step parked within 30 s is not tried (no second wait of the publisher's
    deadline in the chunk), and both requests are published by the next attempt once Kafka is back."""
    kit = make_kit(tmp_path, {"rb": TIMED.replace("timeout: 60,", "timeout: 600,") % "deny"})
    tried = _down(kit)
    await kit.send()
    kit.iam.add_key("ml-training", "AKIAOTHERKEY00000000")
    kit.clock.now += 10
    await kit.send(key="AKIAOTHERKEY00000000")
    assert (len(kit.engine.state.parked_steps()), len(tried)) == (2, 1)
    del kit.publisher.publish
    kit.clock.now += 20
    assert await kit.engine.decisions.ask_again() == 2
    assert sorted(_requests(kit)) == sorted(p.request_id for p in kit.engine.state.parked_steps())


async def test_a_step_that_stopped_waiting_is_not_asked_for_again(tmp_path) -> None:
    """A step whose unsent request timed out (denied, escalated) before Kafka came back: no request is published."""
    kit = make_kit(tmp_path, {"rb": TIMED % "deny"})
    _down(kit)
    await kit.send()
    del kit.publisher.publish
    await _lapse(kit)
    assert kit.engine.state.parked_steps() == []
    kit.clock.now += 30
    assert await kit.engine.decisions.ask_again() == 0
    assert _requests(kit) == []
    assert kit.engine.decisions.unsent == {}


async def test_the_approvals_loop_asks_again_without_the_gate(tmp_path) -> None:
    """Each turn of the approvals loop (`_expire`) publishes the unsent requests again, without holding the gate."""
    svc = _fleet_service(tmp_path)
    seen: list[bool] = []

    async def ask_again() -> int:
        seen.append(svc._lock._writer)
        return 0

    svc.engine.decisions.ask_again = ask_again  # type: ignore[method-assign]
    svc.engine.decisions.due = lambda: False  # type: ignore[method-assign]
    await svc._expire()
    assert seen == [False]
    svc.recorder.close()
    await svc.close_unstarted()


async def test_the_unsent_requests_are_a_gauge_operators_can_alert_on(tmp_path) -> None:
    """`responder_approval_requests_unsent` counts the parked steps whose request Kafka did not take, until sent."""
    svc = _fleet_service(tmp_path)
    assert svc.metrics.value("responder_approval_requests_unsent") == 0
    svc.engine.decisions.unsent[("inc-1", "contain")] = "req-1"
    assert svc.metrics.value("responder_approval_requests_unsent") == 1
    svc.engine.decisions.unsent.clear()
    assert svc.metrics.value("responder_approval_requests_unsent") == 0
    svc.recorder.close()
    await svc.close_unstarted()
