"""The parkings whose run, timeout or re-check a bug stopped in this process are remembered only while the state
still holds them: a service up for months does not keep one per bug-stopped parking for ever."""

from __future__ import annotations

import pytest

from tests.escalation_kit import one_incident, taken_up_raising


@pytest.mark.parametrize("sweep", ["expire", "due"])
async def test_a_dropped_run_is_forgotten_once_the_state_no_longer_holds_it(tmp_path, sweep):
    """A dropped run is forgotten by the next sweep once the state no longer holds its parking."""
    kit = await taken_up_raising(tmp_path, RuntimeError("a bug"))
    decisions = kit.engine.decisions
    await kit.engine.expire()
    assert len(decisions._dropped) == 1
    kit.engine.state.settle(one_incident(kit), "wipe")  # as a hand-over or an eviction takes it out of the state
    if sweep == "expire":
        await kit.engine.expire()
    else:
        assert not decisions.due()
    assert not decisions._dropped


async def test_a_dropped_run_still_held_is_kept_and_not_taken_up_again(tmp_path):
    """While the state still holds the dropped parking, the sweep keeps it dropped (it does not repeat the bug)."""
    kit = await taken_up_raising(tmp_path, RuntimeError("a bug"))
    calls = []

    async def raising(*args: object) -> None:
        calls.append(args)
        raise RuntimeError("a bug")

    kit.engine.decisions.resume = raising  # type: ignore[assignment]
    await kit.engine.expire()
    await kit.engine.expire()
    assert len(calls) == 1
    assert len(kit.engine.decisions._dropped) == 1


async def test_a_timeout_a_bug_stopped_is_tried_again_at_the_incidents_next_finding(tmp_path):
    """A timeout a bug stopped is tried again by the next sweep after the incident's next new finding."""
    from tests.kit import WIPE, make_kit

    kit = make_kit(tmp_path, {"rb": WIPE % "deny"})
    await kit.send()
    decisions = kit.engine.decisions

    async def raising(*args: object) -> None:
        raise RuntimeError("a bug")

    decisions._expire = raising  # type: ignore[method-assign]
    kit.clock.now += 3600
    await kit.engine.expire()
    del decisions._expire  # the bug is gone
    await kit.send()  # the same alert again: a redelivery, not a new finding
    assert not decisions.due()
    await kit.send(finding_id="a-new-finding")
    assert decisions.due()
    await kit.engine.expire()
    assert [b["step"] for b in kit.entries("approval.expired")] == ["wipe"]
