"""A step whose intent a crash left open, run again, records the before-state that intent read, not a re-read."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import JsonValue

from responder.actuators.base import ActuationContext, ActuationResult
from responder.engine.guards import GuardPolicy
from tests.fakes import Echo, EchoParams, Killed
from tests.kit import ECHO, decision, make_kit

KEY, USER = "AKIAABCDEFGHIJKLMNO1", "user-1"


async def _crashed_half_way(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, dict[str, str]]:
    """A kit whose first run changed part of the target (one of two ENIs swapped, say) and then died, and the
    target the echo actuator observes."""
    target: dict[str, str] = {"state": "original"}

    async def observe(self: Echo, p: EchoParams, ctx: ActuationContext) -> dict[str, JsonValue] | None:
        return dict(target)

    monkeypatch.setattr(Echo, "observe", observe)
    kit = make_kit(tmp_path, {"rb": ECHO.format(guards="")})
    real = kit.echo.apply

    async def partial(p: EchoParams, ctx: ActuationContext) -> ActuationResult:
        target["state"] = "half-isolated"
        raise Killed

    kit.echo.apply = partial  # type: ignore[method-assign]
    with pytest.raises(Killed):
        await kit.send(key=KEY, user=USER)
    kit.echo.apply = real  # type: ignore[method-assign]
    return kit, target


async def test_a_step_cut_short_after_a_partial_change_records_the_state_from_before_it(tmp_path, monkeypatch):
    """The first run changed part of the target and died: the rerun's prior is the intent's, not the partial state."""
    kit, _ = await _crashed_half_way(tmp_path, monkeypatch)
    kit.start()
    await kit.send(key=KEY, user=USER)
    intents: list[dict[str, Any]] = kit.entries("step.intent")
    assert [i["before"] for i in intents] == [{"state": "original"}] * 2
    [result] = kit.entries("step.result")
    assert result["status"] == "ok"
    assert result["prior"] == {"state": "original"}


@pytest.mark.parametrize("restart", [False, True])
async def test_an_open_intent_parked_again_records_the_state_a_human_left_not_the_one_from_before_the_crash(
        tmp_path, monkeypatch, restart):
    """An open intent parked again records as prior the state a human left, not the one before the crash."""
    kit, target = await _crashed_half_way(tmp_path, monkeypatch)
    kit.policy = GuardPolicy(kill_switch=True)
    kit.start()
    await kit.send(key=KEY, user=USER)
    [parked] = kit.engine.state.parked_steps()
    target["state"] = "fixed-by-hand"  # a human works on the target while the step waits for them
    if restart:  # the service restarts meanwhile: the replay forgets the open intent's before-state as well
        kit.start()
    assert await kit.engine.decide(*decision(kit, parked.incident, "note"))
    [result] = kit.entries("step.result")
    assert result["status"] == "ok"
    assert result["prior"] == {"state": "fixed-by-hand"}
