"""A fleet member reads every decision from the first at each start: a record it refuses then was refused when it
came, so it is neither recorded nor counted again (a rolling restart is not a flood of forged decisions)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from responder.engine.partitions import cut, merge, release
from responder.engine.refusals import Refusals
from responder.errors import Refusal
from responder.fleet import FleetState
from responder.models.event import RawRecord
from responder.service import Service
from responder.settings import Settings
from responder.timeline.recorder import Recorder
from responder.timeline.store import MemoryStore
from tests.kit import WIPE, decision, make_kit


async def test_a_forged_or_malformed_decision_read_again_at_a_start_is_not_counted_again(tmp_path):
    """A forged or malformed decision is counted once; read again at a start it is neither recorded nor counted."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny"})
    fleet = FleetState(kit.engine, changelog=None)  # type: ignore[arg-type]  # no partition moves here
    await kit.send()
    [parked] = kit.engine.state.parked_steps()
    fleet.partitions.of[parked.incident] = 0
    counted: list[str] = []
    kit.engine.decisions.refusals.counted = counted.append
    forged = decision(kit, parked.incident, "wipe", secret=b"wrong")
    elsewhere = decision(kit, "inc-elsewhere", "wipe", secret=b"wrong")
    for replayed in (False, True, True):
        await fleet.decide(*forged, replayed=replayed)
        await fleet.decide(b"{not json", None, None, replayed=replayed)
        await fleet.decide(*elsewhere, replayed=replayed)
    await kit.engine.recorder.flush()
    assert sorted(counted) == ["bad_signature", "bad_signature", "unsigned"]
    assert len(kit.entries("approval.rejected")) == 3
    assert kit.engine.state.parked(parked.incident, "wipe") is not None  # still waits for a genuine decision


class _Again:
    """An approvals ingest that read `before` records of partition 0 before its start (a fleet member's `_ends`)."""

    def __init__(self, before: int) -> None:
        self.before = before

    def replayed(self, record: RawRecord) -> bool:
        return record.partition == 0 and record.offset < self.before


async def test_records_the_kafka_client_cannot_parse_read_again_at_a_start_are_not_counted_again(tmp_path):
    """Unparseable decision records read again at a start are only logged, while a new one is counted and recorded."""
    service = Service(Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", topics=["a"],
                               approval_keys={"k1": "s"}), runbooks=[])
    real, service.approvals = service.approvals, _Again(3)  # type: ignore[assignment]
    try:
        records = [RawRecord(topic="decisions", offset=n, value=b"", unreadable="crc mismatch") for n in range(4)]
        assert await service._readable(records, "approval.rejected", service.approvals.replayed) == []
        await service.recorder.flush()
        assert service.metrics.value("responder_decisions_refused_total", reason="unreadable") == 1
        [entry] = service.recorder.entries()
        assert entry.body["offset"] == 3
    finally:
        service.approvals = real
        await service.close_unstarted()



async def test_a_decision_held_after_a_start_and_refused_when_its_partition_comes_is_not_counted_again(tmp_path):
    """A decision held at a start and refused when its partition comes here is neither recorded nor counted again."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny"})
    fleet = FleetState(kit.engine, changelog=None)  # type: ignore[arg-type]
    await kit.send()
    [parked] = kit.engine.state.parked_steps()
    other_plan = decision(kit, parked.incident, "wipe", digest="f" * 64)  # names the request, signed, refused
    [moving] = cut(kit.engine.state, {parked.incident}).values()
    release(kit.engine.state, {parked.incident})
    counted: list[str] = []
    kit.engine.decisions.refusals.counted = counted.append
    await fleet.decide(*other_plan, replayed=True)
    merge(kit.engine.state, [moving])
    fleet.partitions.of[parked.incident] = 0
    await fleet.release_held()
    await kit.engine.recorder.flush()
    assert fleet._held == {}
    assert counted == []
    assert kit.entries("approval.rejected") == []


async def test_a_refusal_in_another_task_while_one_reads_again_is_counted():
    """A refusal in the operator loop while the approvals loop reads again is counted and recorded."""
    refusals = Refusals(Recorder(MemoryStore()), lambda: 0.0, known=lambda key_id: False)
    counted: list[str] = []
    refusals.counted = counted.append
    inside, done = asyncio.Event(), asyncio.Event()

    async def approvals() -> None:
        with refusals.again():
            inside.set()
            await done.wait()
            refusals.record("approval.rejected", {"reason": "again"}, None, refusal=Refusal.UNSIGNED, key_id=None)

    task = asyncio.create_task(approvals())
    await inside.wait()
    assert refusals.record("operator.rejected", {"reason": "new"}, None, refusal=Refusal.UNREADABLE, key_id=None)
    done.set()
    await task
    assert counted == ["unreadable"]


async def _start_order(tmp_path, **fleet: str) -> list[str]:
    """The order in which a service's start finishes reading its decisions' end offsets and starts its alerts
    consumer (whose group join moves partitions)."""
    service = Service(Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", topics=["a"],
                               approval_keys={"k1": "s"}, dry_run=True, **fleet), runbooks=[])
    order: list[str] = []

    async def nothing(wait: float, **_: Any) -> None:  # each is told what sets its wait
        return None

    async def approvals(wait: float, **_: Any) -> None:
        await asyncio.sleep(0.01)  # the end offsets' round trip
        order.append("decisions' end offsets")

    async def alerts(wait: float, **_: Any) -> None:
        order.append("alerts group joins")
        raise ConnectionError("no broker here")

    service.publisher.start, service.approvals.start, service.ingest.start = nothing, approvals, alerts  # type: ignore[method-assign]
    try:
        with pytest.raises(ConnectionError):
            await service._consume_until_stopped()
    finally:
        service.recorder.close()
        await service.close_unstarted()
    return order


async def test_a_fleet_member_reads_its_decisions_end_offsets_before_its_alerts_group_joins(tmp_path):
    """A fleet member reads its decisions' end offsets before joining, so a decision sent meanwhile counts as new."""
    assert await _start_order(tmp_path, changelog_topic="changelog") == ["decisions' end offsets",
                                                                       "alerts group joins"]
