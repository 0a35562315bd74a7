"""In a fleet, the owner of an incident records a decision its step no longer waits for, as a single replica does,
unless it only read it again at its start; a member that does not own the incident holds the decision."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import TopicPartition

from responder.engine.approvals import decision_id
from responder.engine.partitions import cut, merge, release
from responder.engine.snapshot import EngineSnapshot
from responder.fleet import FleetState
from responder.ingest.approvals import ApprovalIngest
from responder.models.event import RawRecord
from tests.kit import WIPE, Kit, decision, make_kit


async def _owned_and_decided(tmp_path: Any) -> tuple[Kit, FleetState, str, tuple[bytes, str, str]]:
    """A fleet member owning an incident whose parked step was approved (so it waits no more); that decision."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny"})
    fleet = FleetState(kit.engine, changelog=None)  # type: ignore[arg-type]  # no partition moves here
    await kit.send()
    [parked] = kit.engine.state.parked_steps()
    fleet.partitions.of[parked.incident] = 0
    approval = decision(kit, parked.incident, "wipe")
    await fleet.decide(*approval)
    assert [p.target for p in kit.wipe.applied] == ["t1"]
    return kit, fleet, parked.incident, approval


Signed = tuple[bytes, str, str]


async def _moving_with_two_decisions(tmp_path: Any) -> tuple[Kit, FleetState, Signed, Signed,
                                                               Callable[[], Awaitable[None]]]:
    """A member whose parked step's incident is owned elsewhere for now; a decision answering its request, one naming
    an earlier parking, and what brings the partition here (restore, then release the held decisions)."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny"})
    fleet = FleetState(kit.engine, changelog=None)  # type: ignore[arg-type]
    await kit.send()
    [parked] = kit.engine.state.parked_steps()
    right = decision(kit, parked.incident, "wipe")
    stale = decision(kit, parked.incident, "wipe", request="f" * 32, ttl=599)
    [moving] = cut(kit.engine.state, {parked.incident}).values()
    release(kit.engine.state, {parked.incident})  # owned elsewhere while the decisions come

    async def arrive() -> None:
        merge(kit.engine.state, [moving])
        fleet.partitions.of[parked.incident] = 0
        await fleet.release_held()

    return kit, fleet, right, stale, arrive


async def test_a_late_decision_on_the_owner_is_recorded_rejected(tmp_path):
    """A decision arriving after its step was decided is refused and recorded by the owner; nothing runs again."""
    kit, fleet, incident, _ = await _owned_and_decided(tmp_path)
    await fleet.decide(*decision(kit, incident, "wipe", "deny", by="alice"))
    await kit.engine.recorder.flush()  # a refusal is durable with the next group commit, not alone
    [rejected] = kit.entries("approval.rejected")
    assert rejected["reason"] == "no approval is pending for this incident and step"
    assert rejected["step"] == "wipe"
    assert [p.target for p in kit.wipe.applied] == ["t1"]


async def test_a_decision_read_again_at_a_start_is_not_recorded_twice(tmp_path):
    """The owner reading again, at its start, a decision it refused then records nothing new."""
    kit, fleet, incident, _ = await _owned_and_decided(tmp_path)
    late = decision(kit, incident, "wipe", "deny")
    await fleet.decide(*late)
    await fleet.decide(*late, replayed=True)
    await kit.engine.recorder.flush()  # a refusal is durable with the next group commit, not alone
    assert len(kit.entries("approval.rejected")) == 1


async def test_a_decision_applied_by_the_previous_owner_is_not_recorded_by_the_new_one(tmp_path):
    """A decision a new owner reads after the previous owner applied it is found applied and not recorded."""
    kit, fleet, incident, approval = await _owned_and_decided(tmp_path)
    await fleet.decide(*approval)
    (tmp_path / "new-owner").mkdir()
    other = make_kit(tmp_path / "new-owner", {"rb": WIPE % "deny"})
    other.engine.state.restore(EngineSnapshot.model_validate_json(kit.engine.state.snapshot().model_dump_json()))
    moved = FleetState(other.engine, changelog=None)  # type: ignore[arg-type]
    moved.partitions.of[incident] = 0
    await moved.decide(*approval)
    assert kit.entries("approval.rejected") == []
    assert other.entries("approval.rejected") == []
    assert [p.target for p in kit.wipe.applied] == ["t1"]


async def test_a_held_decision_applied_elsewhere_is_dropped_when_the_partition_comes(tmp_path):
    """A decision held while the incident was owned elsewhere is dropped, not refused, once shown applied."""
    kit, fleet, incident, approval = await _owned_and_decided(tmp_path)
    [applied] = cut(kit.engine.state, {incident}).values()  # the slice its owner wrote to the changelog
    release(kit.engine.state, {incident})  # then the incident was not here
    fleet.partitions.of.clear()
    await fleet.decide(*approval)  # held: owned elsewhere
    assert list(fleet._held) == [(incident, "wipe", decision_id(approval[0]))]
    merge(kit.engine.state, [applied])  # the partition comes: its slice is restored
    assert kit.engine.state.used(incident, decision_id(approval[0]))
    await fleet.release_held()
    assert fleet._held == {}
    assert kit.entries("approval.rejected") == []


async def test_a_forged_decision_for_an_owned_incident_is_recorded(tmp_path):
    """A decision with a bad signature for an incident owned here, whose step waits no more, is recorded rejected."""
    kit, fleet, incident, _ = await _owned_and_decided(tmp_path)
    await fleet.decide(*decision(kit, incident, "wipe", secret=b"wrong"))
    await kit.engine.recorder.flush()  # a refusal is durable with the next group commit, not alone
    [rejected] = kit.entries("approval.rejected")
    assert "signature" in str(rejected["reason"])


async def test_a_decision_for_an_incident_owned_elsewhere_is_held_not_recorded(tmp_path):
    """A member not owning the incident holds the decision and records nothing."""
    kit, fleet, incident, _ = await _owned_and_decided(tmp_path)
    fleet.partitions.of.clear()
    held = decision(kit, incident, "wipe", "deny")
    await fleet.decide(*held)
    assert kit.entries("approval.rejected") == []
    assert list(fleet._held) == [(incident, "wipe", decision_id(held[0]))]


async def test_a_decision_for_an_earlier_parking_held_after_the_right_one_does_not_push_it_out(tmp_path):
    """Of two decisions held for one step, the one answering its request releases it; the other is dropped."""
    kit, fleet, right, stale, arrive = await _moving_with_two_decisions(tmp_path)
    await fleet.decide(*right)
    await fleet.decide(*stale)
    assert len(fleet._held) == 2
    await arrive()
    assert [p.target for p in kit.wipe.applied] == ["t1"]
    assert fleet._held == {}


async def test_a_member_reading_every_decision_knows_which_it_reads_again():
    """Records before the end offsets taken at the start are read again; later ones, and other partitions, are not."""
    ingest = ApprovalIngest("127.0.0.1:9", "approvals", None, manual_assignment=True)
    assert ingest.reads_all
    ingest._ends = {TopicPartition("approvals", 0): 5}

    def record(partition: int, offset: int) -> RawRecord:
        return RawRecord(topic="approvals", partition=partition, offset=offset, value=b"{}")

    assert ingest.replayed(record(0, 4))
    assert not ingest.replayed(record(0, 5))
    assert not ingest.replayed(record(1, 0))
    grouped = ApprovalIngest("127.0.0.1:9", "approvals", "g.approvals")
    assert not grouped.reads_all
    for each in (ingest, grouped):
        await each.consumer.stop()


async def test_a_held_decision_read_again_at_the_start_for_an_earlier_parking_is_not_recorded_again(tmp_path):
    """A held decision for an earlier parking, read again at a start, is not recorded again; the right one releases."""
    kit, fleet, right, stale, arrive = await _moving_with_two_decisions(tmp_path)
    await fleet.decide(*stale, replayed=True)
    await fleet.decide(*right, replayed=True)
    await arrive()
    assert kit.entries("approval.rejected") == []
    assert [p.target for p in kit.wipe.applied] == ["t1"]


async def test_forged_decisions_held_for_an_incident_owned_elsewhere_do_not_push_out_a_signed_one(tmp_path,
                                                                                                  monkeypatch):
    """Decisions that do not verify are not held (a flood of them pushed the signed one out of the bounded hold)."""
    monkeypatch.setattr("responder.fleet_decisions.MAX_HELD", 2)
    kit, fleet, right, _, arrive = await _moving_with_two_decisions(tmp_path)
    await fleet.decide(*right)
    for n in range(3):  # each one distinct, none signed with an approval key
        await fleet.decide(*decision(kit, "inc-forged", "wipe", secret=b"forged", ttl=600 + n))
    await arrive()
    assert [p.target for p in kit.wipe.applied] == ["t1"]
    assert fleet._held == {}


async def test_a_forged_decision_read_while_its_partition_moves_is_recorded_not_only_logged(tmp_path):
    """A forged decision read while its partition moves is recorded as `approval.rejected` once, nothing applied."""
    kit, fleet, _, _, arrive = await _moving_with_two_decisions(tmp_path)
    value, _, sig = decision(kit, "inc-forged", "wipe", secret=b"forged")
    await fleet.decide(value, "x" * 500, sig)
    await fleet.decide(value, "x" * 500, sig, replayed=True)
    await kit.engine.recorder.flush()  # a refusal is durable with the next group commit, not alone
    [rejected] = kit.entries("approval.rejected")
    assert "unknown signing key id" in rejected["reason"]
    assert rejected["key_id"] == "x" * 64 + "…[+436 chars]"
    await arrive()
    assert fleet._held == {}
    assert kit.wipe.applied == []


async def test_a_forged_decision_read_while_its_partition_moves_is_recorded_without_its_own_words(tmp_path):
    """A non-owner records a forged decision as the owner does: no incident, step or `by` of the forger's choosing."""
    kit, fleet, _, _, arrive = await _moving_with_two_decisions(tmp_path)
    value, key_id, sig = decision(kit, "inc-" + "x" * 197, "wipe", secret=b"forged", by="alice")  # NAME_MAX: read
    await fleet.decide(value, key_id, sig)
    await kit.engine.decide(value, key_id, sig)  # the owner's (a single replica's) record of the same
    await kit.engine.recorder.flush()
    apart, owner = [e for e in kit.engine.recorder.entries() if e.kind == "approval.rejected"]
    assert (apart.incident, apart.body) == (owner.incident, owner.body)
    assert apart.incident is None
    assert set(apart.body) == {"reason", "key_id"}
    await arrive()
    assert kit.wipe.applied == []
