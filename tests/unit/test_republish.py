"""A step recovered parked (a restart, a rejoin after a fence, a partition restored from another replica) has its
approval request published again once, under the same request id: the process that parked it may have died before
Kafka took the request, and what it kept to ask again died with it (responder/engine/asking.py)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from structlog.testing import capture_logs

from responder.engine import asking
from responder.engine.approvals import Parked
from responder.engine.guards import GuardPolicy
from responder.engine.pending import latest_requests, pending
from responder.fleet import FleetState
from responder.models.approval import REQUESTS_TOPIC
from responder.models.event import RawRecord
from tests.escalation_kit import TIMED
from tests.fleet_kit import CompactedChangelog, publisher_down, requests_published, send_to
from tests.kit import Kit, decision, make_kit

WAITS = TIMED.replace("timeout: 60,", "timeout: 600,") % "deny"


async def _asked_again(tmp_path: Path) -> tuple[Kit, Parked]:
    """A step parked, then its request published again, once, after a restart; the kit and the parked step."""
    kit = make_kit(tmp_path, {"rb": WAITS})
    await kit.send()
    [parked] = kit.engine.state.parked_steps()
    kit.start()
    assert await kit.engine.decisions.ask_again() == 1
    return kit, parked


async def test_a_request_kafka_did_not_take_before_a_restart_is_published_after_it(tmp_path: Path) -> None:
    """A request Kafka did not take before a restart is published once, under its own id, at the first turn after."""
    kit = make_kit(tmp_path, {"rb": WAITS})
    publisher_down(kit)
    await kit.send()
    [parked] = kit.engine.state.parked_steps()
    del kit.publisher.publish  # Kafka is back
    kit.start()  # a restart: a new engine recovered from the timeline
    with capture_logs() as logs:
        assert await kit.engine.decisions.ask_again() == 1
    assert requests_published(kit) == [parked.request_id]
    assert [e["request_id"] for e in logs if e["event"] == "approval_request_republished"] == [parked.request_id]
    assert await kit.engine.decisions.ask_again() == 0
    assert requests_published(kit) == [parked.request_id]
    assert kit.engine.decisions.unsent == {}


async def test_a_request_published_twice_is_one_pending_step(tmp_path: Path) -> None:
    """A request published before and after a restart is read by `approvals pending` as one waiting step."""
    kit, parked = await _asked_again(tmp_path)
    assert requests_published(kit) == [parked.request_id, parked.request_id]
    records = [RawRecord(topic=t, partition=0, offset=i, key=k, value=v, timestamp_ms=1_000 + i)
               for i, (t, k, v) in enumerate(kit.publisher.sent) if t == REQUESTS_TOPIC]
    waiting = pending(latest_requests(records), [], None, datetime.fromtimestamp(kit.clock(), UTC))
    assert [(p.request.step, p.request.request_id) for p in waiting] == [("deactivate", parked.request_id)]


async def test_a_republication_kafka_does_not_take_is_unsent_and_tried_30_s_later(tmp_path: Path) -> None:
    """A recovered request Kafka does not take after the restart is counted unsent, then published 30 s later."""
    kit = make_kit(tmp_path, {"rb": WAITS})
    tried = publisher_down(kit)
    await kit.send()
    [parked] = kit.engine.state.parked_steps()
    kit.start()
    assert await kit.engine.decisions.ask_again() == 0
    assert (len(tried), kit.engine.decisions.unsent) == (2, {(parked.incident, "deactivate"): parked.request_id})
    del kit.publisher.publish
    kit.clock.now += 29
    assert await kit.engine.decisions.ask_again() == 0
    kit.clock.now += 1
    assert await kit.engine.decisions.ask_again() == 1
    assert requests_published(kit) == [parked.request_id]


def _member(tmp_path: Path, name: str, log: CompactedChangelog) -> tuple[Kit, FleetState]:
    """A replica whose durable entries write the shared changelog (as the service wires it)."""
    (tmp_path / name).mkdir()
    kit = make_kit(tmp_path / name, {"rb": WAITS}, policy=GuardPolicy())
    fleet = FleetState(kit.engine, log)  # type: ignore[arg-type]
    kit.engine.recorder.barriers.append(fleet.on_durable)
    return kit, fleet


async def test_a_partition_restored_by_another_replica_publishes_its_parked_requests_again(tmp_path: Path) -> None:
    """The replica restoring a dead replica's partition republishes its unsent parked request under the same id."""
    log = CompactedChangelog()
    first, fleet = _member(tmp_path, "first", log)
    fleet.owned = {0}
    publisher_down(first)
    await send_to(first, 0)
    [parked] = first.engine.state.parked_steps()
    second, other = _member(tmp_path, "second", log)
    assert await second.engine.decisions.ask_again() == 0
    slices = await other.fetch(0)
    assert slices is not None
    other.adopt(0, slices)
    assert await second.engine.decisions.ask_again() == 1
    assert requests_published(second) == [parked.request_id]


async def test_a_recovered_step_past_its_deadline_is_left_to_its_timeout(tmp_path: Path) -> None:
    """A recovered step whose deadline has passed is not published again as waiting; its timeout decides it then."""
    kit = make_kit(tmp_path, {"rb": WAITS})
    publisher_down(kit)
    await kit.send()
    del kit.publisher.publish
    kit.start()
    kit.clock.now += 601
    assert await kit.engine.decisions.ask_again() == 0
    await kit.engine.expire()
    assert kit.engine.state.parked_steps() == []
    assert await kit.engine.decisions.ask_again() == 0
    assert requests_published(kit) == []


async def test_a_request_published_by_its_step_is_not_sent_late_as_well(tmp_path: Path) -> None:
    """A request kept unsent, then published by its step (an escalation publishes the same id): not published again."""
    kit = make_kit(tmp_path, {"rb": WAITS})
    publisher_down(kit)
    await kit.send()
    [parked] = kit.engine.state.parked_steps()
    del kit.publisher.publish
    kit.clock.now += 30
    assert await kit.engine.decisions.asking.publish(parked)
    assert kit.engine.decisions.unsent == {}
    assert await kit.engine.decisions.ask_again() == 0
    assert requests_published(kit) == [parked.request_id]


async def test_recovered_requests_are_published_again_a_bounded_number_a_turn(tmp_path: Path, monkeypatch) -> None:
    """Many steps recovered parked are published again REPUBLISH_PER_TURN a turn, the rest at the next turns."""
    monkeypatch.setattr(asking, "REPUBLISH_PER_TURN", 1)
    kit = make_kit(tmp_path, {"rb": WAITS})
    await kit.send()
    await kit.send("AKIAOTHERKEY00000000")
    assert len(kit.engine.state.parked_steps()) == 2
    kit.start()
    assert [await kit.engine.decisions.ask_again() for _ in range(3)] == [1, 1, 0]
    assert len(requests_published(kit)) == 4


async def test_a_request_its_step_published_during_the_round_is_not_published_again(tmp_path: Path) -> None:
    """A recovered step's request published by its lane during a republish round is not sent again by the round."""
    kit = make_kit(tmp_path, {"rb": WAITS})
    await kit.send()
    await kit.send("AKIAOTHERKEY00000000")
    kit.start()
    first, second = kit.engine.state.parked_steps()
    publish = kit.publisher.publish

    async def meanwhile(*args: Any, **kw: Any) -> None:
        del kit.publisher.publish
        assert await kit.engine.decisions.asking.publish(second)
        await publish(*args, **kw)

    kit.publisher.publish = meanwhile  # type: ignore[method-assign]
    assert await kit.engine.decisions.ask_again() == 1
    assert Counter(requests_published(kit)) == {first.request_id: 2, second.request_id: 2}


async def test_a_republished_copy_does_not_hide_why_a_decision_naming_no_request_is_refused(tmp_path: Path) -> None:
    """A decision naming no request id, published before a request's republished copy, is still listed as refused."""
    kit, parked = await _asked_again(tmp_path)
    original, copy = [RawRecord(topic=t, partition=0, offset=i, key=k, value=v, timestamp_ms=1_000 + 1_000 * i)
                      for i, (t, k, v) in enumerate(kit.publisher.sent) if t == REQUESTS_TOPIC]
    value, _, _ = decision(kit, parked.incident, parked.step)
    unnamed = orjson.dumps({k: v for k, v in orjson.loads(value).items() if k != "request_id"})
    said = RawRecord(topic="decisions", partition=0, offset=0, value=unnamed, timestamp_ms=1_500)
    [waiting] = pending(latest_requests([original, copy]), [said], None, datetime.fromtimestamp(kit.clock(), UTC))
    assert waiting.answer is None
    assert len(waiting.refused) == 1


async def test_a_step_escalated_while_its_late_copy_is_sent_still_gets_its_escalated_copy_out(tmp_path: Path) -> None:
    """A step escalated while its unsent request is sent keeps the refused escalated copy for the next round."""
    kit = make_kit(tmp_path, {"rb": TIMED % "escalate"})
    publisher_down(kit)
    await kit.send()
    [parked] = kit.engine.state.parked_steps()
    del kit.publisher.publish  # Kafka is back for the round
    kit.clock.now += 30
    publish = kit.publisher.publish

    async def escalated_meanwhile(*args: Any, **kw: Any) -> None:
        publisher_down(kit)  # the escalation's copy is refused
        kit.clock.now += 31  # past the step's 60 s deadline
        await kit.engine.expire()
        kit.publisher.publish = publish  # type: ignore[method-assign]
        await publish(*args, **kw)  # the round's copy goes

    kit.publisher.publish = escalated_meanwhile  # type: ignore[method-assign]
    assert await kit.engine.decisions.ask_again() == 1
    [escalated] = kit.engine.state.parked_steps()
    assert escalated.escalated
    assert kit.engine.decisions.unsent == {(parked.incident, parked.step): parked.request_id}
    kit.clock.now += 30
    assert await kit.engine.decisions.ask_again() == 1
    last = orjson.loads([v for t, _, v in kit.publisher.sent if t == REQUESTS_TOPIC][-1])
    assert (last["request_id"], last["escalated"]) == (parked.request_id, True)
