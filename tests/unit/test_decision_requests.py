"""A decision answers the request it names (each parking of a step has its own id), not any later parking of the
same plan: a human's approval given for one request never releases the step once it was parked again, and it waives
the guards that request named (by guard and scope), not one that tripped since."""

from __future__ import annotations

import dataclasses

import orjson

from responder.engine.approvals import RUNBOOK_APPROVAL, Parked
from responder.engine.guards import GuardPolicy, reason_shape
from responder.engine.snapshot import EngineSnapshot
from responder.engine.state import EngineState
from responder.models.approval import ApprovalRequest
from responder.models.runbook import Quota
from tests.escalation_kit import FULL
from tests.fleet_kit import APPROVED_ON_TIMEOUT, FakeFleetGuard
from tests.kit import WIPE, Kit, decision, make_kit


async def _parked(tmp_path, body: str = APPROVED_ON_TIMEOUT) -> tuple[Kit, Parked]:
    """A kit whose first step waits for a human, and that parking."""
    kit = make_kit(tmp_path, {"rb": body})
    await kit.send()
    [parked] = kit.engine.state.parked_steps()
    return kit, parked


def _published(kit: Kit) -> list[ApprovalRequest]:
    return [ApprovalRequest.model_validate_json(value) for _, _, value in kit.publisher.sent]


async def test_each_parking_has_its_own_request_id_on_the_timeline_and_in_the_published_request(tmp_path):
    """A parked step's request id is recorded in approval.requested and published; parking it again makes a new one."""
    kit, parked = await _parked(tmp_path)
    assert parked.request_id is not None
    assert len(parked.request_id) == 32
    assert kit.entries("approval.requested")[0]["request_id"] == parked.request_id
    assert _published(kit)[0].request_id == parked.request_id
    kit.engine.guards.policy = GuardPolicy(kill_switch=True)
    kit.clock.now += 601
    await kit.engine.expire()  # released by its timeout, parked again by the kill switch
    [again] = kit.engine.state.parked_steps()
    assert again.request_id not in (None, parked.request_id)
    assert [r["request_id"] for r in kit.entries("approval.requested")] == [parked.request_id, again.request_id]
    assert _published(kit)[-1].request_id == again.request_id


async def test_an_approval_given_before_a_timeout_release_does_not_release_the_step_parked_again(tmp_path):
    """An approval arriving after a timeout released the step and a kill switch parked it again is refused."""
    kit, parked = await _parked(tmp_path)
    early = decision(kit, parked.incident, "wipe")  # signed for the first request, delivered late
    kit.engine.guards.policy = GuardPolicy(kill_switch=True)
    kit.clock.now += 601
    await kit.engine.expire()
    [again] = kit.engine.state.parked_steps()
    assert again.digest == parked.digest  # the same plan: the digest alone would have matched
    assert not await kit.engine.decide(*early)
    await kit.engine.recorder.flush()  # a refusal is durable with the next group commit, not alone
    reason = kit.entries("approval.rejected")[-1]["reason"]
    assert reason.startswith(f"decision answers request {parked.request_id}, not request {again.request_id}")
    assert kit.echo.applied == []
    assert kit.engine.state.parked(parked.incident, "wipe") is again
    assert await kit.engine.decide(*decision(kit, parked.incident, "wipe"))  # a decision for the new request
    assert [p.target for p in kit.echo.applied] == ["t1"]
    assert kit.entries("approval.decided")[-1]["request_id"] == again.request_id


async def test_an_escalated_request_keeps_its_id_so_a_decision_for_the_first_publication_applies(tmp_path):
    """An escalation re-publishes the same parking: a decision made from the first publication still answers it."""
    kit, parked = await _parked(tmp_path, WIPE % "escalate")
    early = decision(kit, parked.incident, "wipe", ttl=1800)
    kit.clock.now += 601
    await kit.engine.expire()
    [first, escalated] = _published(kit)
    assert escalated.escalated
    assert escalated.request_id == first.request_id == parked.request_id
    assert await kit.engine.decide(*early)
    assert [p.target for p in kit.wipe.applied] == ["t1"]


async def test_a_decision_that_names_no_request_is_refused_for_a_step_parked_with_one(tmp_path):
    """A decision signed without a request id (an older `approve`) answers no parking that has one."""
    kit, parked = await _parked(tmp_path)
    kit.engine.state.park(dataclasses.replace(parked, request_id=None))  # so the kit signs a decision naming none
    unnamed = decision(kit, parked.incident, "wipe")
    kit.engine.state.park(parked)
    assert b"request_id" not in unnamed[0]
    assert not await kit.engine.decide(*unnamed)
    await kit.engine.recorder.flush()  # a refusal is durable with the next group commit, not alone
    assert kit.entries("approval.rejected")[-1]["reason"].startswith(
        f"decision names no request: the step waits on request {parked.request_id}")
    assert kit.echo.applied == []


async def test_a_step_parked_before_requests_had_ids_is_answered_by_a_decision_naming_none(tmp_path):
    """A step parked before requests had ids takes a decision naming no request and refuses one naming any."""
    kit, parked = await _parked(tmp_path)
    old = dataclasses.replace(parked, request_id=None)
    kit.engine.state.park(old)
    assert not await kit.engine.decide(*decision(kit, parked.incident, "wipe", request="0" * 32))
    await kit.engine.recorder.flush()  # a refusal is durable with the next group commit, not alone
    assert "parked before requests had ids" in kit.entries("approval.rejected")[-1]["reason"]
    assert await kit.engine.decide(*decision(kit, parked.incident, "wipe"))
    assert [p.target for p in kit.echo.applied] == ["t1", "t2"]
    assert "request_id" not in kit.entries("approval.decided")[-1]


async def test_the_request_id_survives_a_restart_a_snapshot_and_an_old_slice(tmp_path):
    """Replay and the fleet's snapshot keep a parking's id; an entry or slice written before ids has none."""
    kit, parked = await _parked(tmp_path)
    kit.start()
    [replayed] = kit.engine.state.parked_steps()
    assert replayed.request_id == parked.request_id
    doc = orjson.loads(kit.engine.state.snapshot().model_dump_json())
    restored = EngineState()
    restored.restore(EngineSnapshot.model_validate(doc))
    assert restored.parked_steps()[0].request_id == parked.request_id
    for p in doc["parked"]:
        del p["request_id"]
    old = EngineState()
    old.restore(EngineSnapshot.model_validate(doc))
    assert old.parked_steps()[0].request_id is None
    body = kit.entries("approval.requested")[0]
    del body["request_id"]
    assert Parked.from_body(parked.incident, body).request_id is None


async def test_an_approval_of_a_full_runbook_quota_does_not_waive_the_global_quota_filled_since(tmp_path):
    """Approving a step over its full runbook quota does not waive the global quota filled since; it is parked again."""
    kit = make_kit(tmp_path, {"rb": FULL + APPROVED_ON_TIMEOUT},
                   policy=GuardPolicy(quotas=[Quota(actuator="test.*", max=2, window=3600)]))
    kit.engine.state.windows.record("rb", "test.echo", kit.clock())  # the runbook's quota (max 1) is full; 1 of 2
    await kit.send()
    [parked] = kit.engine.state.parked_steps()
    assert [r.split(":")[0] for r in parked.reasons] == ["quota", RUNBOOK_APPROVAL]
    kit.engine.state.windows.record("other", "test.echo", kit.clock())  # another runbook filled the global one
    assert await kit.engine.decide(*decision(kit, parked.incident, "wipe"))
    assert kit.echo.applied == []
    [again] = kit.engine.state.parked_steps()
    assert [r.split(":", 2)[:2] for r in again.reasons] == [["quota", " runbook rb"], ["quota", " global"]]
    kit.clock.now += 1
    assert await kit.engine.decide(*decision(kit, parked.incident, "wipe"))
    assert [p.target for p in kit.echo.applied] == ["t1"]


async def test_an_approval_over_the_local_kill_switch_does_not_waive_the_fleets(tmp_path):
    """The fleet kill switch turned on after a request named the local one parks the approved step again."""
    kit, _ = await _parked(tmp_path)
    kit.engine.guards.policy = GuardPolicy(kill_switch=True)
    kit.clock.now += 601
    await kit.engine.expire()  # released by its timeout, parked again for the local switch
    [local] = kit.engine.state.parked_steps()
    kit.engine.fleet_guard = FakeFleetGuard(full=False)  # type: ignore[assignment]
    kit.engine.fleet_guard.killed = True  # type: ignore[union-attr]
    assert await kit.engine.decide(*decision(kit, local.incident, "wipe"))
    assert kit.echo.applied == []
    [again] = kit.engine.state.parked_steps()
    assert [r.split(":")[0] for r in again.reasons] == ["kill_switch", "kill_switch"]


def test_a_reason_keeps_its_guard_scope_and_limits_without_what_it_counts():
    """What a human waived is matched by guard, scope and limits, not by the runs or partitions its text counts."""
    hourly = "quota: runbook rb: test.* ran {} time(s) in 3600s (max 3)"
    assert reason_shape(hourly.format(3)) == reason_shape(hourly.format(7))
    assert reason_shape(hourly.format(3)) != reason_shape("quota: global: test.* ran 3 time(s) in 3600s (max 3)")
    assert reason_shape(hourly.format(3)) != reason_shape("quota: runbook rb: test.* ran 3 time(s) in 60s (max 3)")
    assert reason_shape(hourly.format(3)) != reason_shape("quota: runbook rb: test.* ran 3 time(s) in 3600s (max 1)")
    uncounted = "quota_uncounted: runbook rb: test.* cannot be counted while {} ({} counted here, max 3)"
    assert reason_shape(uncounted.format("partition(s) 3, 5 are not restored yet", 1)) == \
        reason_shape(uncounted.format("partition(s) 5 are not restored yet", 2))


async def test_an_approval_of_a_full_burst_quota_does_not_waive_an_hourly_quota_filled_since(tmp_path):
    """Approving a step held by a full one-minute quota does not run it over an hourly quota filled since."""
    quotas = "guards: {quotas: [{actuator: test.*, max: 1, window: 60}, {actuator: test.*, max: 3, window: 3600}]}\n"
    kit = make_kit(tmp_path, {"rb": quotas + APPROVED_ON_TIMEOUT})
    kit.engine.state.windows.record("rb", "test.echo", kit.clock())
    await kit.send()
    [parked] = kit.engine.state.parked_steps()
    assert [r.split(":")[0] for r in parked.reasons] == ["quota", RUNBOOK_APPROVAL]
    for _ in range(2):  # other steps of the runbook ran meanwhile: the hour is full
        kit.engine.state.windows.record("rb", "test.echo", kit.clock())
    kit.clock.now += 120  # and the minute is over when the human decides
    assert await kit.engine.decide(*decision(kit, parked.incident, "wipe"))
    assert kit.echo.applied == []
    [again] = kit.engine.state.parked_steps()
    assert [r.split(" in ")[1] for r in again.reasons] == ["3600s (max 3)"]
