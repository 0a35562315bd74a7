"""A step whose intent a crash left open is resolved without asking again, unless a guard that stops automation
tripped since (the kill switch turned on, a protected id added): then what verify() shows applied is recorded, and
what it does not is acted on only as a new step would be (parked for a human, or refused)."""

from __future__ import annotations

from responder.engine.guards import GuardPolicy
from responder.models.runbook import Protected
from tests.fakes import EchoParams, dying
from tests.kit import ECHO, Kit, decision, make_kit

KEY, USER = "AKIAABCDEFGHIJKLMNO1", "user-1"


async def _crashed_inside_the_step(tmp_path, *, applied: bool) -> Kit:
    """A kit killed inside its one step, its intent durable with no result; `applied`: after the call took effect."""
    kit = make_kit(tmp_path, {"rb": ECHO.format(guards="")})
    with dying(kit.echo, applied=applied):
        await kit.send(key=KEY, user=USER)
    assert len(kit.entries("step.intent")) == 1
    assert kit.entries("step.result") == []
    return kit


async def test_an_open_intent_is_resolved_without_a_human_when_no_guard_stops_it(tmp_path):
    """With nothing tripped since, the redelivered alert resolves the open intent: applied once, nobody asked."""
    kit = await _crashed_inside_the_step(tmp_path, applied=False)
    kit.start()
    await kit.send(key=KEY, user=USER)
    assert kit.echo.applied == [EchoParams(target=USER, message="hi")]
    assert kit.entries("approval.requested") == []


async def test_the_kill_switch_turned_on_after_the_crash_parks_an_open_intent_not_applied(tmp_path):
    """A kill switch turned on before the restart parks an open, unapplied intent for a human, who approves it once."""
    kit = await _crashed_inside_the_step(tmp_path, applied=False)
    kit.policy = GuardPolicy(kill_switch=True)
    kit.start()
    await kit.send(key=KEY, user=USER)
    assert kit.echo.applied == []
    [parked] = kit.engine.state.parked_steps()
    assert [r.split(":")[0] for r in parked.reasons] == ["kill_switch"]
    assert kit.entries("step.result") == []
    assert await kit.engine.decide(*decision(kit, parked.incident, "note"))
    assert kit.echo.applied == [EchoParams(target=USER, message="hi")]
    assert [b["status"] for b in kit.entries("step.result")] == ["ok"]


async def test_the_kill_switch_records_an_open_intent_that_had_applied(tmp_path):
    """Under the kill switch, an open intent that had applied is recorded as recovered, asking nobody."""
    kit = await _crashed_inside_the_step(tmp_path, applied=True)
    kit.policy = GuardPolicy(kill_switch=True)
    kit.start()
    await kit.send(key=KEY, user=USER)
    assert len(kit.echo.applied) == 1
    [result] = kit.entries("step.result")
    assert (result["status"], result["recovered"]) == ("ok", True)
    assert kit.engine.state.parked_steps() == []


async def test_a_protected_id_added_after_the_crash_refuses_an_open_intent_not_applied(tmp_path):
    """A protected id added before the restart: the open intent, not applied, is refused, never applied."""
    kit = await _crashed_inside_the_step(tmp_path, applied=False)
    kit.policy = GuardPolicy(protected=Protected(ids=[USER]))
    kit.start()
    await kit.send(key=KEY, user=USER)
    assert kit.echo.applied == []
    assert [b["status"] for b in kit.entries("step.result")] == ["refused"]
