"""The run a decision (or timeout) begins goes on past its step to the steps after it; it records its end
(`approval.settled`), and a crash after the step is past but before that end leaves the steps after it, which the
service takes up once it is back (the redelivered decision is refused as used, and the alert is not redelivered)."""

from __future__ import annotations

import pytest
from pydantic import Field

from responder.engine.guards import GuardPolicy
from responder.engine.partitions import cut, merge
from responder.engine.recovery import fold
from responder.engine.state import EngineState
from responder.errors import PermanentActuationError, TimelineError
from responder.timeline import MemoryStore, Recorder
from tests.escalation_kit import crash_after, decided, one_incident, taken_up_raising
from tests.fakes import Echo, EchoParams
from tests.kit import DEACTIVATE_STEPS, ESCALATE, HEADER, MISSING_KEY, WIPE, Kit, decision, make_kit

CONTINUE = WIPE.replace("    with: {target: t1}\n", "    with: {target: t1}\n    on_failure: continue\n")
GATED_DEACTIVATE = DEACTIVATE_STEPS.replace("    with:\n", "    approval: {required: true, approvers: [alice]}\n"
                                                          "    with:\n") + ESCALATE


def _steps(kit: Kit, kind: str) -> list[str]:
    return [str(b["step"]) for b in kit.entries(kind)]


async def test_a_run_that_ended_records_it_and_a_restart_takes_nothing_up(tmp_path):
    """An approved step and the one after it run; the run's end is recorded, so a restart runs nothing again."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny"})
    await decided(kit)
    assert _steps(kit, "approval.settled") == ["wipe"]
    assert kit.entries("approval.decided")[0]["settles"] is True
    before = kit.kinds()
    kit.start()
    assert not kit.engine.decisions.due()
    await kit.engine.expire()
    assert kit.kinds() == before
    assert [p.target for p in kit.echo.applied] == ["t2"]


async def test_a_crash_after_the_approved_step_leaves_the_steps_after_it_to_the_restart(tmp_path):
    """A crash after the approved step's result is durable runs the next step once on restart and records the end."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny"})
    await decided(kit)
    echoed = list(kit.echo.applied)
    kit.echo.applied.clear()
    crash_after(kit, "step.result", "wipe")
    assert kit.engine.decisions.due()
    await kit.engine.expire()
    assert kit.echo.applied == echoed
    assert _steps(kit, "step.result") == ["wipe", "note"]
    assert _steps(kit, "approval.settled") == ["wipe"]
    assert not kit.engine.state.continuing()
    kit.start()  # and once only
    await kit.engine.expire()
    assert kit.echo.applied == echoed


async def test_a_crash_inside_the_step_after_the_approved_one_resolves_its_intent(tmp_path):
    """A crash inside the step after the approved one leaves its intent verified on restart, not applied again."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny"})
    await decided(kit)
    crash_after(kit, "step.intent", "note")
    await kit.engine.expire()
    assert [p.target for p in kit.echo.applied] == ["t2"]  # the one apply before the crash, verified after it
    [*_, last] = kit.entries("step.result")
    assert (last["step"], last["status"], last.get("recovered")) == ("note", "ok", True)


async def test_a_crash_after_a_denial_runs_the_steps_a_continue_step_lets_run(tmp_path):
    """After a crash past a denial, a `continue` step lets later steps run on restart; a `stop` step records the end."""
    kit = make_kit(tmp_path, {"rb": CONTINUE % "deny"})
    await decided(kit, "deny")
    assert [p.target for p in kit.echo.applied] == ["t2"]
    kit.echo.applied.clear()
    crash_after(kit, "step.result", "wipe")
    await kit.engine.expire()
    assert [p.target for p in kit.echo.applied] == ["t2"]
    assert _steps(kit, "approval.settled") == ["wipe"]

    (tmp_path / "stop").mkdir()
    stop = make_kit(tmp_path / "stop", {"rb": WIPE % "deny"})
    await decided(stop, "deny")
    crash_after(stop, "step.result", "wipe")
    assert stop.engine.decisions.due()
    await stop.engine.expire()
    assert stop.echo.applied == []
    assert _steps(stop, "approval.settled") == ["wipe"]
    assert not stop.engine.decisions.due()


async def test_a_timeout_approval_goes_on_after_a_crash_too(tmp_path):
    """`on_timeout: approve` releases the step; killed after its result, the next step runs after the restart."""
    body = WIPE.replace("test.wipe", "test.echo").replace("approvers", "required: true, approvers") % "approve"
    kit = make_kit(tmp_path, {"rb": body})
    await kit.send()
    kit.clock.now += 601
    await kit.engine.expire()
    assert kit.entries("approval.expired")[0]["settles"] is True
    crash_after(kit, "step.result", "wipe")
    kit.echo.applied.clear()
    await kit.engine.expire()
    assert [p.target for p in kit.echo.applied] == ["t2"]


async def test_a_decision_recorded_before_runs_recorded_their_end_is_not_taken_up_again(tmp_path):
    """A decision recorded before `approval.settled` existed does not make a restart run the steps after it."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny"})
    await decided(kit)
    old = b"".join(line.replace(b',"settles":true', b"") for line in kit.store.read().splitlines(keepends=True)
                   if b'"approval.settled"' not in line)  # read as entries only: the chain is not checked here
    store = MemoryStore()
    store.write(old)
    store.sync()
    kit.store = store
    crash_after(kit, "step.result", "wipe")
    kit.echo.applied.clear()
    assert not kit.engine.decisions.due()
    await kit.engine.expire()
    assert kit.echo.applied == []


async def test_a_fleet_slice_carries_the_steps_left_after_a_decided_one(tmp_path):
    """A fleet slice cut while steps after an approved one are left carries them; the restoring replica runs them."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny"})
    await decided(kit)
    crash_after(kit, "step.result", "wipe")
    incident = one_incident(kit)
    [carried] = kit.engine.state.continuing()
    assert (carried[0].step, carried[1], carried[2]) == ("wipe", True, False)
    [part] = cut(kit.engine.state, {incident}).values()
    moved = EngineState()
    merge(moved, [part.model_validate_json(part.model_dump_json())])
    assert [(p.step, ok) for p, ok, _ in moved.continuing()] == [("wipe", True)]
    kit.engine.state.restore(moved.snapshot())
    kit.echo.applied.clear()
    await kit.engine.expire()
    assert [p.target for p in kit.echo.applied] == ["t2"]


async def test_a_changed_runbook_leaves_the_steps_after_a_decided_one_and_says_so(tmp_path):
    """After a runbook version change, a restart leaves the steps after a decided one and records the run's end."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny"})
    await decided(kit)
    (kit.runbooks_dir / "rb.yaml").write_text((kit.runbooks_dir / "rb.yaml").read_text() + "version: 2\n")
    crash_after(kit, "step.result", "wipe")
    kit.echo.applied.clear()
    await kit.engine.expire()
    assert kit.echo.applied == []
    assert _steps(kit, "approval.settled") == ["wipe"]
    assert not kit.engine.decisions.due()


def _replayed(kit: Kit) -> EngineState:
    """The state a restart would rebuild from the timeline now."""
    state = EngineState()
    for entry in Recorder(kit.store).entries():
        fold(state, entry)
    return state


async def test_a_new_parking_of_the_step_replaces_the_run_a_crash_cut_short(tmp_path):
    """A step re-parked by a new alert ends the run a crash cut short; a crash after re-approval resolves only it."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny"})
    await decided(kit)
    crash_after(kit, "step.result", "wipe")
    kit.wipe.applied.clear()  # undone by hand
    await kit.send(finding_id="f-again")
    assert [p.step for p in kit.engine.state.parked_steps()] == ["wipe"]
    assert kit.engine.state.continuing() == _replayed(kit).continuing() == []
    assert await kit.engine.decide(*decision(kit, one_incident(kit), "wipe"))
    crash_after(kit, "step.intent", "wipe")
    await kit.engine.expire()
    assert not kit.engine.state.inflight()
    wiped = [b for b in kit.entries("step.result") if b["step"] == "wipe"]
    assert [(b["status"], b.get("recovered")) for b in wiped] == [("ok", None), ("ok", True)]
    assert [p.target for p in kit.wipe.applied] == ["t1"]


async def test_a_crash_inside_the_escalation_of_an_approved_step_that_failed_resolves_it(tmp_path):
    """A crash inside a failed approved step's `on_failure` step resolves its intent on restart and records the end."""
    kit = make_kit(tmp_path, {"rb": GATED_DEACTIVATE})
    await kit.send(key=MISSING_KEY)
    assert await kit.engine.decide(*decision(kit, one_incident(kit), "deactivate"))
    assert [p.message for p in kit.echo.applied] == ["deactivate failed"]
    crash_after(kit, "step.intent", "tell.deactivate")
    assert kit.engine.state.inflight()
    await kit.engine.expire()
    assert not kit.engine.state.inflight()
    assert [p.message for p in kit.echo.applied] == ["deactivate failed"]
    [*_, told] = kit.entries("step.result")
    assert (told["step"], told["status"], told.get("recovered")) == ("tell.deactivate", "ok", True)
    assert _steps(kit, "approval.settled") == ["deactivate"]

PAGED_TOO = "guards: {quotas: [{actuator: test.page, max: 0, window: 1h}]}\n" + GATED_DEACTIVATE.replace(
    "on_failure:\n", "on_failure:\n  - id: page\n    actuator: test.page\n    with: {target: pager}\n")


class Pager(Echo):
    """An echo with a name of its own, so a quota can hold it alone."""

    name = "test.page"


async def _failed_with_page_parked(tmp_path) -> Kit:
    """An approved deactivation that failed: its first escalation step (`page`, its quota full) waits for a human,
    the second (`tell`) ran."""
    kit = make_kit(tmp_path, {})
    kit.registry.add(Pager())
    (kit.runbooks_dir / "rb.yaml").write_text(HEADER.format(id="rb") + PAGED_TOO)
    kit.start()
    await kit.send(key=MISSING_KEY)
    assert await kit.engine.decide(*decision(kit, one_incident(kit), "deactivate"))
    assert [p.step for p in kit.engine.state.parked_steps()] == ["page.deactivate"]
    assert [p.message for p in kit.echo.applied] == ["deactivate failed"]
    return kit


async def test_finishing_an_escalation_leaves_a_step_waiting_for_a_human_as_it_is(tmp_path):
    """A crash in the second escalation step resolves it without re-asking the waiting first one or escalating twice."""
    kit = await _failed_with_page_parked(tmp_path)
    [asked] = kit.entries("approval.requested")[1:]
    crash_after(kit, "step.intent", "tell.deactivate")
    await kit.engine.expire()
    assert not kit.engine.state.inflight()
    assert [b["request_id"] for b in kit.entries("approval.requested")[1:]] == [asked["request_id"]]
    assert [p.request_id for p in kit.engine.state.parked_steps()] == [asked["request_id"]]
    assert len(kit.entries("step.escalated")) == 1
    assert [p.message for p in kit.echo.applied] == ["deactivate failed"]


async def test_an_escalation_step_that_had_not_started_runs_after_the_crash(tmp_path):
    """A crash before the second escalation step starts lets the sweep run it, leaving the first waiting for a human."""
    kit = await _failed_with_page_parked(tmp_path)
    kit.echo.applied.clear()
    crash_after(kit, "approval.requested", "page.deactivate")
    await kit.engine.expire()
    assert [p.message for p in kit.echo.applied] == ["deactivate failed"]
    assert [p.step for p in kit.engine.state.parked_steps()] == ["page.deactivate"]
    assert len(kit.entries("step.escalated")) == 1
    assert _steps(kit, "approval.settled") == ["deactivate"]


async def test_a_denied_step_is_not_escalated_after_a_crash(tmp_path):
    """A denial has no escalation: killed after it, the sweep runs no `on_failure` step for it."""
    kit = make_kit(tmp_path, {"rb": GATED_DEACTIVATE})
    await kit.send(key=MISSING_KEY)
    assert await kit.engine.decide(*decision(kit, one_incident(kit), "deactivate", "deny"))
    crash_after(kit, "step.result", "deactivate")
    await kit.engine.expire()
    assert kit.echo.applied == []
    assert kit.entries("step.escalated") == []
    assert _steps(kit, "approval.settled") == ["deactivate"]


@pytest.mark.parametrize("kind", ["step.result", "step.intent"])
async def test_a_run_taken_up_after_a_crash_stays_in_the_fleet_slice_until_it_ends(tmp_path, kind):
    """A run taken up after a crash stays in the incident's fleet slice until it ends, for the next owner to take up."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny"})
    await decided(kit)
    crash_after(kit, kind, "wipe")
    incident, seen = one_incident(kit), []
    apply = kit.echo.apply

    async def spy(p, ctx):  # what a slice cut while the step after it acts carries
        seen.append([(c.step, ok) for c, ok, _ in cut(kit.engine.state, {incident})[incident].continuing])
        return await apply(p, ctx)

    kit.echo.apply = spy  # type: ignore[method-assign]
    await kit.engine.expire()
    assert seen == [[("wipe", True)]]
    assert not kit.engine.state.continuing()


async def test_a_run_that_raises_is_not_taken_up_again_until_a_restart(tmp_path):
    """A taken-up run that raises is dropped in this process only, the sweep goes on, and a restart takes it up."""
    kit = await taken_up_raising(tmp_path, RuntimeError("a bug"))
    kit.echo.applied.clear()
    await kit.engine.expire()
    assert not kit.engine.decisions.due()
    assert [p.step for p, _, _ in kit.engine.state.continuing()] == ["wipe"]
    assert "approval.settled" not in kit.kinds()
    kit.start()
    await kit.engine.expire()
    assert [p.target for p in kit.echo.applied] == ["t2"]


class Flaky(Echo):
    """An echo whose first call fails."""

    name = "test.flaky"

    async def apply(self, p, ctx):  # type: ignore[no-untyped-def]
        if not getattr(self, "failed_once", False):
            self.failed_once = True
            raise PermanentActuationError("the pager is down", code="Down")
        return await super().apply(p, ctx)


async def _kit_with(tmp_path, actuator: Echo, body: str) -> Kit:
    kit = make_kit(tmp_path, {})
    kit.registry.add(actuator)
    (kit.runbooks_dir / "rb.yaml").write_text(HEADER.format(id="rb") + body)
    kit.start()
    return kit


async def test_a_second_failure_of_the_step_is_escalated_after_a_crash(tmp_path):
    """A second failure of an approved step, its escalation not durable before a crash, is escalated by the sweep."""
    flaky = Flaky()
    kit = await _kit_with(tmp_path, flaky, GATED_DEACTIVATE.replace("actuator: test.echo", "actuator: test.flaky"))
    await kit.send(key=MISSING_KEY)
    assert await kit.engine.decide(*decision(kit, one_incident(kit), "deactivate"))
    await kit.send(key=MISSING_KEY, finding_id="f-again")
    assert await kit.engine.decide(*decision(kit, one_incident(kit), "deactivate"))
    crash_after(kit, "step.result", "deactivate")
    flaky.applied.clear()  # what the run did after the crash point never happened
    await kit.engine.expire()
    told = [str(b["status"]) for b in kit.entries("step.result") if b["step"] == "tell.deactivate"]
    assert told == ["failed", "ok"]
    assert [b.get("resumed") for b in kit.entries("step.escalated")] == [None, True]
    assert [p.message for p in flaky.applied] == ["deactivate failed"]


async def test_an_escalation_recorded_before_the_crash_is_not_recorded_again(tmp_path):
    """An escalation durable before the crash is not recorded again as `step.escalated` by the sweep."""
    skipped = GATED_DEACTIVATE.replace("    actuator: test.echo\n", "    actuator: test.echo\n"
                                       "    when: [{field: incident.events, op: ge, value: 3}]\n")
    kit = make_kit(tmp_path, {"rb": skipped})
    await kit.send(key=MISSING_KEY)
    assert await kit.engine.decide(*decision(kit, one_incident(kit), "deactivate"))
    crash_after(kit, "step.skipped", "tell.deactivate")
    await kit.engine.expire()
    assert len(kit.entries("step.escalated")) == 1
    assert kit.echo.applied == []
    assert _steps(kit, "approval.settled") == ["deactivate"]


class Narrower(EchoParams):
    """What an upgrade of the actuator might accept: the parked step's target no longer."""

    target: str = Field(pattern=r"^x$")


async def test_a_released_step_whose_params_no_longer_validate_is_past_once(tmp_path):
    """A released step whose params no longer validate fails and is escalated once, not rerun after a crash."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny" + ESCALATE})
    await kit.send()
    kit.wipe.params = Narrower  # type: ignore[misc]
    assert await kit.engine.decide(*decision(kit, one_incident(kit), "wipe"))
    assert [p.message for p in kit.echo.applied] == ["wipe failed"]
    kit.wipe.params = EchoParams  # type: ignore[misc]  # the runbook loads again after the restart
    crash_after(kit, "step.result", "tell.wipe")
    [(_, ok, escalated)] = kit.engine.state.continuing()
    assert (ok, escalated) == (False, True)
    await kit.engine.expire()
    assert kit.wipe.applied == []
    assert len(kit.entries("step.escalated")) == 1
    assert [b["status"] for b in kit.entries("step.result") if b["step"] == "wipe"] == ["failed"]
    assert _steps(kit, "approval.settled") == ["wipe"]


async def test_a_write_the_timeline_refuses_inside_a_taken_up_run_goes_up(tmp_path):
    """A refused timeline or changelog write inside a taken-up run goes up to the service; the run is not dropped."""
    kit = await taken_up_raising(tmp_path, TimelineError("the disk is full"))
    with pytest.raises(TimelineError, match="disk is full"):
        await kit.engine.expire()
    assert kit.engine.decisions.due()


async def test_a_bug_in_one_timeout_leaves_the_others_and_the_service_running(tmp_path):
    """A timeout whose release raises is left alone; other overdue steps still expire and the sweep returns."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny"})
    await kit.send()
    kit.iam.add_key("ml-training", "AKIAOTHERKEY00000000")
    await kit.send(key="AKIAOTHERKEY00000000")
    broken, release = one_incident(kit), kit.engine.decisions.release

    async def release_or_raise(parked, **kw):  # type: ignore[no-untyped-def]
        if parked.incident == broken:
            raise RuntimeError("a bug")
        await release(parked, **kw)

    kit.engine.decisions.release = release_or_raise  # type: ignore[method-assign]
    kit.clock.now += 601
    await kit.engine.expire()
    assert [b["status"] for b in kit.entries("step.result")] == ["denied"]
    assert [p.incident for p in kit.engine.state.parked_steps()] == [broken]
    assert not kit.engine.decisions.due()


async def test_a_step_parked_again_after_a_bug_in_its_timeout_has_its_new_timeout(tmp_path):
    """A step parked again after a bug in its timeout is expired at its new deadline in the same process."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny"})
    await kit.send()
    release = kit.engine.decisions.release

    async def raise_once(parked, **kw):  # type: ignore[no-untyped-def]
        kit.engine.decisions.release = release  # type: ignore[method-assign]
        raise RuntimeError("a bug")

    kit.engine.decisions.release = raise_once  # type: ignore[method-assign]
    kit.clock.now += 601
    await kit.engine.expire()
    [first] = kit.engine.state.parked_steps()
    kit.engine.guards.policy = GuardPolicy(kill_switch=True)
    assert await kit.engine.decide(*decision(kit, one_incident(kit), "wipe"))
    [again] = kit.engine.state.parked_steps()
    assert again.request_id != first.request_id
    assert not kit.engine.decisions.due()
    kit.clock.now += 601
    assert kit.engine.decisions.due()
    assert await kit.engine.expire() == 1
    assert [(b["step"], b["status"]) for b in kit.entries("step.result")] == [("wipe", "denied")]
    assert kit.engine.state.parked_steps() == []


async def test_a_bug_after_a_timeouts_escalation_leaves_the_escalated_deadline(tmp_path, monkeypatch):
    """A timeout hitting a bug after its escalation expires the step at the escalated deadline, escalated once."""
    import responder.engine.asking as asking

    kit = make_kit(tmp_path, {"rb": WIPE % "escalate"})
    await kit.send()
    publish = asking.publish_request

    async def raise_once(*args, **kw):  # type: ignore[no-untyped-def]
        monkeypatch.setattr(asking, "publish_request", publish)
        raise RuntimeError("a bug")

    monkeypatch.setattr(asking, "publish_request", raise_once)
    kit.clock.now += 601
    await kit.engine.expire()
    [escalated] = kit.engine.state.parked_steps()
    assert escalated.escalated
    assert not kit.engine.decisions.due()
    kit.clock.now += 601
    assert kit.engine.decisions.due()
    assert await kit.engine.expire() == 1
    assert _steps(kit, "approval.escalated") == ["wipe"]
    assert [(b["step"], b["status"]) for b in kit.entries("step.result")] == [("wipe", "denied")]
    assert kit.engine.state.parked_steps() == []
