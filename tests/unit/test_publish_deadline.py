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
from tests.escalation_kit import TIMED, told_escalations
from tests.fakes import MetadataClient
from tests.fleet_kit import fleet_service, publisher_down, requests_published
from tests.kit import Kit, make_kit


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


async def _lapse(kit: Kit) -> None:
    kit.clock.now += 61
    await kit.engine.expire()
    await kit.engine.recorder.flush()


async def test_a_request_kafka_did_not_take_leaves_the_step_parked_and_its_timeout_reaches_a_human(tmp_path) -> None:
    """An approval request Kafka did not take leaves the step parked, and its timeout lapse still pages on-call."""
    kit = make_kit(tmp_path, {"rb": TIMED % "escalate"})
    publisher_down(kit)
    with capture_logs() as logs:
        await kit.send()
    assert [p.step for p in kit.engine.state.parked_steps()] == ["deactivate"]
    assert [e["event"] for e in logs].count("approval_request_unsent") == 1
    await _lapse(kit)
    assert [p.step for p in kit.engine.state.parked_steps()] == ["deactivate"]  # escalated, still waiting
    await _lapse(kit)
    assert told_escalations(kit) == [("oncall", "deactivate failed")]


async def test_a_request_kafka_did_not_take_is_published_once_kafka_is_back_before_its_timeout(tmp_path) -> None:
    """An approval request Kafka did not take is published once, by the next attempt after Kafka is back."""
    kit = make_kit(tmp_path, {"rb": TIMED.replace("timeout: 60,", "timeout: 600,") % "deny"})
    publisher_down(kit)
    await kit.send()
    [parked] = kit.engine.state.parked_steps()
    kit.clock.now += 30
    assert await kit.engine.decisions.ask_again() == 0  # still down
    del kit.publisher.publish  # Kafka is back
    kit.clock.now += 29
    assert await kit.engine.decisions.ask_again() == 0  # not before 30 s from the failed attempt
    assert requests_published(kit) == []
    kit.clock.now += 1
    assert await kit.engine.decisions.ask_again() == 1
    assert requests_published(kit) == [parked.request_id]
    assert parked.deadline > kit.clock.now  # before its timeout
    kit.clock.now += 30
    assert await kit.engine.decisions.ask_again() == 0
    assert requests_published(kit) == [parked.request_id]


async def test_a_second_step_parked_while_kafka_is_down_does_not_wait_for_the_publisher_again(tmp_path) -> None:
    """A second step parked within 30 s of an unsent request is not tried; both are published once Kafka is back."""
    kit = make_kit(tmp_path, {"rb": TIMED.replace("timeout: 60,", "timeout: 600,") % "deny"})
    tried = publisher_down(kit)
    await kit.send()
    kit.iam.add_key("ml-training", "AKIAOTHERKEY00000000")
    kit.clock.now += 10
    await kit.send(key="AKIAOTHERKEY00000000")
    assert (len(kit.engine.state.parked_steps()), len(tried)) == (2, 1)
    del kit.publisher.publish
    kit.clock.now += 20
    assert await kit.engine.decisions.ask_again() == 2
    assert sorted(requests_published(kit)) == sorted(p.request_id for p in kit.engine.state.parked_steps())


async def test_a_step_that_stopped_waiting_is_not_asked_for_again(tmp_path) -> None:
    """A step whose unsent request timed out (denied, escalated) before Kafka came back: no request is published."""
    kit = make_kit(tmp_path, {"rb": TIMED % "deny"})
    publisher_down(kit)
    await kit.send()
    del kit.publisher.publish
    await _lapse(kit)
    assert kit.engine.state.parked_steps() == []
    kit.clock.now += 30
    assert await kit.engine.decisions.ask_again() == 0
    assert requests_published(kit) == []
    assert kit.engine.decisions.unsent == {}


class _Quiet:
    """The approvals consumer with nothing to read: each poll returns no record, the `turns`-th asks the service to
    stop."""

    consumer = None  # no Kafka consumer behind it: never out of its group (responder/ingest/lost.py `in_group`)

    def __init__(self, svc: Any, turns: int) -> None:
        self.svc, self.turns = svc, turns

    async def poll(self) -> dict[Any, list[Any]]:
        await asyncio.sleep(0.01)
        self.turns -= 1
        if self.turns <= 0:
            self.svc.request_stop()
        return {}

    async def commit(self, offsets: dict[Any, int]) -> None:
        return None

    def replayed(self, record: Any) -> bool:
        return False


async def _loop_with(tmp_path: Any, ask_again: Any, turns: int) -> list[int]:
    """Run a fleet service's approvals loop for `turns` empty polls with `ask_again(service)` as the decisions'; the
    turns at which it expired the parked steps (the loop's own work)."""
    svc = fleet_service(tmp_path)
    expired: list[int] = []

    def due() -> bool:  # the loop's `_expire` looks for parked steps past their deadline: none here
        expired.append(len(expired))
        return False

    svc.engine.decisions.ask_again = lambda: ask_again(svc)  # type: ignore[method-assign]
    svc.engine.decisions.due = due  # type: ignore[method-assign]
    real, svc.approvals = svc.approvals, _Quiet(svc, turns)  # type: ignore[assignment]
    try:
        await asyncio.wait_for(svc._approvals_loop(), 5.0)
    finally:
        svc.approvals = real
        svc.recorder.close()
        await svc.close_unstarted()
    return expired


async def test_the_approvals_loop_asks_again_without_the_gate(tmp_path) -> None:
    """Each turn of the approvals loop publishes the unsent requests again, without holding the gate."""
    seen: list[bool] = []

    async def ask_again(svc: Any) -> int:
        seen.append(svc._lock._writer)
        return 0

    assert len(await _loop_with(tmp_path, ask_again, 3)) == 3
    assert seen
    assert not any(seen)


async def test_a_round_of_requests_hung_on_a_down_broker_does_not_hold_the_decisions_up(tmp_path) -> None:
    """A round of `ask_again` hung on a down broker runs beside the approvals loop, which still applies decisions."""
    rounds: list[asyncio.Event] = []
    cancelled: list[bool] = []

    async def hangs(_: Any) -> int:
        rounds.append(asyncio.Event())
        try:
            await rounds[-1].wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return 0

    assert len(await _loop_with(tmp_path, hangs, 5)) == 5
    assert len(rounds) == 1
    assert cancelled == [True]  # ended with the loop: none outlives it (its publisher is stopped after the loops)


async def test_the_unsent_requests_are_a_gauge_operators_can_alert_on(tmp_path) -> None:
    """`responder_approval_requests_unsent` counts the parked steps whose request Kafka did not take, until sent."""
    svc = fleet_service(tmp_path)
    assert svc.metrics.value("responder_approval_requests_unsent") == 0
    svc.engine.decisions.unsent[("inc-1", "contain")] = "req-1"
    assert svc.metrics.value("responder_approval_requests_unsent") == 1
    svc.engine.decisions.unsent.clear()
    assert svc.metrics.value("responder_approval_requests_unsent") == 0
    svc.recorder.close()
    await svc.close_unstarted()
