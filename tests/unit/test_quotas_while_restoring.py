"""A quota that cannot be counted (a fleet replica still restoring a partition that carries quota windows) parks the
step, which goes on by itself once the count is complete; a quota that can be counted is not affected."""

from __future__ import annotations

import asyncio

from aiokafka import TopicPartition

from responder.engine.guards import UNCOUNTED, GuardPolicy
from responder.models.runbook import Quota
from responder.models.timeline import EntryKind
from responder.service import Service
from responder.settings import Settings
from tests.fleet_kit import (
    FIVE_AN_HOUR,
    UNRESTORED,
    fleet_service,
    parked_uncounted,
    slow_service,
    with_recording_consumer,
)
from tests.kit import DEACTIVATE_STEPS, ECHO, ESCALATE, MISSING_KEY, Kit, chunk_in_hand, make_kit

APPROVED = FIVE_AN_HOUR + """
steps:
  - id: note
    actuator: test.echo
    approval: {required: true}
    with: {target: "${event.resource.access_key.attributes.user_name}", message: hi}
"""


async def _recheck(kit: Kit) -> int:
    """Take up every step parked only for a quota that could not be counted, as the service does; how many."""
    return sum([await kit.engine.decisions.recheck(p) for p in kit.engine.decisions.uncounted()])


async def test_a_runbook_quota_that_cannot_be_counted_parks_the_step(tmp_path):
    """While windows are missing, a step under a runbook quota trips `quota_uncounted` (soft); nothing runs."""
    kit = await parked_uncounted(tmp_path)
    assert kit.echo.applied == []
    [trip] = kit.entries("guard.tripped")
    assert (trip["guard"], trip["hard"]) == (UNCOUNTED, False)
    assert trip["detail"] == f"runbook rb: test.* cannot be counted while {UNRESTORED} (0 counted here, max 5)"
    assert kit.entries("approval.requested")[0]["reasons"] == [f"{UNCOUNTED}: {trip['detail']}"]


async def test_the_parked_step_goes_on_by_itself_once_the_count_is_complete(tmp_path):
    """Once the windows are in, the request is withdrawn and the step runs; a restart does not park it again."""
    kit = await parked_uncounted(tmp_path)
    kit.engine.guards.uncounted = lambda: None
    assert await _recheck(kit) == 1
    assert [p.target for p in kit.echo.applied] == ["ml-training"]
    kinds = kit.kinds()
    assert kinds.index("approval.requested") < kinds.index("approval.withdrawn") < kinds.index("step.intent")
    assert kit.entries("approval.withdrawn")[0]["step"] == "note"
    kit.start()
    assert kit.engine.state.parked_steps() == []
    assert kit.engine.state.granted() == []
    assert await _recheck(kit) == 0


async def test_a_quota_full_once_counted_asks_again_for_that(tmp_path):
    """A step taken up again trips the quota if it is full by then: parked again, for a human, with that reason."""
    kit = await parked_uncounted(tmp_path, guards="guards: {quotas: [{actuator: test.*, max: 1, window: 1h}]}")
    kit.engine.state.windows.record("rb", "test.echo", kit.clock())  # the restored windows: one run already
    kit.engine.guards.uncounted = lambda: None
    assert await _recheck(kit) == 1
    assert kit.echo.applied == []
    [again] = kit.engine.state.parked_steps()
    assert again.reasons == ["quota: runbook rb: test.* ran 1 time(s) in 3600s (max 1)"]
    assert kit.engine.decisions.uncounted() == []


async def test_a_step_parked_for_other_reasons_too_waits_for_a_human(tmp_path):
    """A step that also needs a human for another reason (here the runbook's approval) is not taken up again."""
    kit = make_kit(tmp_path, {"rb": APPROVED})
    kit.engine.guards.uncounted = lambda: UNRESTORED
    await kit.send()
    [parked] = kit.engine.state.parked_steps()
    assert parked.reasons[-1] == "approval required by the runbook"
    kit.engine.guards.uncounted = lambda: None
    assert await _recheck(kit) == 0
    assert kit.echo.applied == []


async def test_a_step_whose_runbook_is_gone_is_not_offered_for_a_take_up(tmp_path):
    """A step whose runbook version is no longer loaded is not offered for a take-up and waits for its timeout."""
    kit = await parked_uncounted(tmp_path)
    assert len(kit.engine.decisions.uncounted()) == 1
    kit.engine.runbooks.clear()
    assert kit.engine.decisions.uncounted() == []


async def test_a_crash_after_the_withdrawal_resumes_the_step_once(tmp_path):
    """A withdrawal made durable without the step's intent (a crash between) is resumed once after the restart."""
    kit = await parked_uncounted(tmp_path)
    [parked] = kit.engine.state.parked_steps()
    kit.engine.recorder.append(EntryKind.APPROVAL_WITHDRAWN, {"step": parked.step, "reason": "test"}, parked.incident)
    await kit.engine.recorder.flush()
    kit.start()
    assert [p.step for p in kit.engine.state.granted()] == ["note"]
    await kit.engine.expire()  # resolves released steps first, as a decision would
    assert [p.target for p in kit.echo.applied] == ["ml-training"]
    assert kit.engine.state.granted() == []


async def test_a_step_taken_up_again_is_released_while_it_runs(tmp_path):
    """A withdrawn step taken up again is granted, not parked, while it runs; a step decided meanwhile is left."""
    kit = await parked_uncounted(tmp_path)
    kit.engine.guards.uncounted = lambda: None
    [parked] = kit.engine.decisions.uncounted()
    seen: list[tuple[list[str], int]] = []
    resume = kit.engine.decisions.resume

    async def watched(*args: object) -> None:
        state = kit.engine.state
        seen.append(([p.step for p in state.granted()], len(state.parked_steps())))
        await resume(*args)  # type: ignore[arg-type]

    kit.engine.decisions.resume = watched  # type: ignore[assignment]
    assert await kit.engine.decisions.recheck(parked) is True
    assert seen == [(["note"], 0)]
    assert kit.engine.state.granted() == []
    assert await kit.engine.decisions.recheck(parked) is False  # no longer parked: nothing taken up twice
    assert len(kit.echo.applied) == 1


async def test_an_escalation_step_is_not_held_for_a_count_that_may_be_short(tmp_path):
    """An `on_failure` escalation step runs while quota windows are missing; only a full quota holds it."""
    quota = "guards: {quotas: [{actuator: test.*, max: 5, window: 1h}]}\n"
    kit = make_kit(tmp_path, {"rb": quota + DEACTIVATE_STEPS + ESCALATE})
    kit.engine.guards.uncounted = lambda: UNRESTORED
    await kit.send(key=MISSING_KEY)
    assert [p.target for p in kit.echo.applied] == ["oncall"]
    assert kit.entries("guard.tripped") == []


async def test_a_quota_that_can_be_counted_or_does_not_apply_is_not_affected(tmp_path):
    """With every window in, or with no quota on the step's actuator, the step runs without asking."""
    (tmp_path / "counted").mkdir(), (tmp_path / "other").mkdir()
    counted = make_kit(tmp_path / "counted", {"rb": ECHO.format(guards=FIVE_AN_HOUR)})
    counted.engine.guards.uncounted = lambda: None
    await counted.send()
    other = make_kit(tmp_path / "other", {"rb": ECHO.format(guards="guards: {quotas: [{actuator: aws.*, max: 1, "
                                                                 "window: 1h}]}")})
    other.engine.guards.uncounted = lambda: UNRESTORED
    await other.send()
    for kit in (counted, other):
        assert [p.target for p in kit.echo.applied] == ["ml-training"]
        assert kit.entries("guard.tripped") == []


async def test_a_full_quota_says_it_is_full_not_uncounted(tmp_path):
    """A quota already at its max trips as full, whatever else is missing."""
    kit = make_kit(tmp_path, {"rb": ECHO.format(guards="guards: {quotas: [{actuator: test.*, max: 1, window: 1h}]}")})
    await kit.send(key="AKIAABCDEFGHIJKLMNO1", user="user-1")
    kit.engine.guards.uncounted = lambda: UNRESTORED
    await kit.send(key="AKIAABCDEFGHIJKLMNO2", user="user-2")
    [trip] = kit.entries("guard.tripped")
    assert (trip["guard"], trip["detail"]) == ("quota", "runbook rb: test.* ran 1 time(s) in 3600s (max 1)")


async def test_a_global_quota_counted_fleet_wide_needs_no_local_windows(tmp_path):
    """A global quota counted fleet-wide by the DynamoDB guard does not trip for missing local windows."""
    policy = GuardPolicy(quotas=[Quota(actuator="test.*", max=5, window=3600)])
    kit = make_kit(tmp_path, {"rb": ECHO.format(guards="")}, policy=policy)
    kit.engine.guards.uncounted, kit.engine.guards.global_shared = (lambda: UNRESTORED), True
    await kit.send(key="AKIAABCDEFGHIJKLMNO1", user="user-1")
    assert [p.target for p in kit.echo.applied] == ["user-1"]
    kit.engine.guards.global_shared = False
    await kit.send(key="AKIAABCDEFGHIJKLMNO2", user="user-2")
    assert [p.target for p in kit.echo.applied] == ["user-1"]
    [trip] = kit.entries("guard.tripped")
    assert trip["detail"].startswith(f"global: test.* cannot be counted while {UNRESTORED}")


async def test_a_fleet_replica_counts_windows_missing_for_every_given_partition_not_in(tmp_path):
    """A fleet replica's guards count missing windows for each given partition not restored, none once all are in."""
    svc = fleet_service(tmp_path)
    assert svc.fleet is not None
    assert svc.engine.guards.uncounted == svc._uncounted
    assert svc.engine.guards.global_shared is False
    svc._given, svc.fleet.owned = {0, 1, 2}, {0}
    assert svc._uncounted() == "partition(s) 1, 2 are not restored yet (their quota windows are not in)"
    svc.fleet.owned = {0, 1, 2}
    assert svc._uncounted() is None
    svc._given = {2}  # a revocation of 0 and 1, both restored: every window was counted
    assert svc._uncounted() is None
    shared = Service(Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "s.jsonl", topics=["a"],
                              runbooks_dir=tmp_path, changelog_topic="changelog", fleet_guard_table="guards"),
                     runbooks=[])
    assert shared.engine.guards.global_shared is True
    single = Service(Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "x.jsonl", topics=["a"],
                              runbooks_dir=tmp_path), runbooks=[])
    assert single.engine.guards.uncounted is None
    for service in (svc, shared, single):
        service.recorder.close()
        await service.close_unstarted()


async def test_a_fleet_replica_takes_the_steps_up_again_only_once_every_partition_is_in(tmp_path):
    """`_recheck` takes parked steps up one at a time once every partition is in, stopping if a rebalance comes."""
    svc = fleet_service(tmp_path)
    assert svc.fleet is not None
    fleet, calls = svc.fleet, []

    async def recheck(parked: object) -> bool:
        calls.append(parked)
        svc._given = {0, 1, 2}  # a partition comes in between two steps
        return True

    svc.engine.decisions.recheck = recheck  # type: ignore[method-assign,assignment]
    svc.engine.decisions.uncounted = lambda: ["a", "b"]  # type: ignore[method-assign,list-item,return-value]
    svc._given, fleet.owned = {0, 1}, {0}
    await svc._recheck()
    assert calls == []
    fleet.owned = {0, 1}
    await svc._recheck()
    assert calls == ["a"]
    svc.recorder.close()
    await svc.close_unstarted()


async def test_a_partition_revoked_before_it_was_restored_counts_as_missing_until_the_hand_over(tmp_path):
    """A partition revoked before it was restored counts as missing for quotas until the hand-over forgets it."""
    partitions = [TopicPartition("a", 0), TopicPartition("a", 1)]
    service, _ = slow_service(tmp_path, frozenset({1}))
    assert service.fleet is not None
    async with with_recording_consumer(service, partitions):
        await service._on_assigned(partitions)
        await asyncio.wait_for(service._restorers[0], 10)
        assert service._uncounted() == UNRESTORED
        lane, done = await chunk_in_hand(service._lock)
        revoking = asyncio.create_task(service._on_revoked(partitions))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not revoking.done()
        assert service._given == set()
        assert service._uncounted() == UNRESTORED  # 1: revoked while restoring, never counted
        done.set()
        await asyncio.gather(lane, revoking)
        assert service._uncounted() is None
        assert service._leaving_unrestored == set()


async def test_the_lanes_run_between_two_steps_taken_up(tmp_path):
    """`_recheck` leaves the gate between two steps long enough for a lane waiting on it to handle its chunk."""
    svc = fleet_service(tmp_path)
    order: list[str] = []
    asked = asyncio.Event()

    async def recheck(parked: object) -> bool:
        order.append(f"step {parked}")
        if parked == "a":
            asyncio.get_running_loop().call_soon(asked.set)
            await asyncio.sleep(0.01)  # the lane asks for the gate meanwhile
        return True

    async def lane() -> None:
        await asked.wait()
        async with svc._lock.shared():
            order.append("lane")

    svc.engine.decisions.recheck = recheck  # type: ignore[method-assign,assignment]
    svc.engine.decisions.uncounted = lambda: ["a", "b", "c"]  # type: ignore[method-assign,list-item,return-value]
    waiting = asyncio.create_task(lane())
    await svc._recheck()
    await waiting
    assert order == ["step a", "lane", "step b", "step c"]
    svc.recorder.close()
    await svc.close_unstarted()


async def test_a_bug_in_one_recheck_leaves_the_others_and_a_restart_takes_it_up(tmp_path):
    """A re-checked step whose run raises is left alone, the others still run, and a restart runs it once."""
    kit = await parked_uncounted(tmp_path)
    await kit.send(key="AKIAABCDEFGHIJKLMNO1", user="user-1")
    [broken, fine] = sorted(kit.engine.decisions.uncounted(), key=lambda p: p.target != "ml-training")
    resume = kit.engine.decisions.resume

    async def resume_or_raise(rb, incident, event, index, parked):  # type: ignore[no-untyped-def]
        if incident.id == broken.incident:
            raise RuntimeError("a bug")
        await resume(rb, incident, event, index, parked)

    kit.engine.decisions.resume = resume_or_raise  # type: ignore[method-assign]
    kit.engine.guards.uncounted = lambda: None
    assert await _recheck(kit) == 1
    assert [p.target for p in kit.echo.applied] == [fine.target]
    assert kit.engine.decisions.uncounted() == []
    assert [p.incident for p in kit.engine.state.granted()] == [broken.incident]
    assert not kit.engine.decisions.due()  # not taken up again here
    kit.start()
    await kit.engine.expire()
    assert sorted(p.target for p in kit.echo.applied) == ["ml-training", "user-1"]
    assert kit.engine.state.granted() == []
