"""The step runner's safety holes: before-state bound to the intent, compare-and-set undo, re-apply on drift."""

from __future__ import annotations

from typing import Any

from responder.engine.undo import Undoer
from responder.errors import TransientActuationError
from tests.kit import KEY, deactivate_key_step, make_kit

CONTAIN = "steps:\n" + deactivate_key_step(2)


def _lose_first_update_reply(iam: Any) -> None:
    """The first UpdateAccessKey takes effect but its reply is lost (a transient error instead)."""
    original, lost = iam.call, [False]

    async def call(service: str, operation: str, **kw: Any) -> dict[str, Any]:
        result = await original(service, operation, **kw)
        if operation == "update_access_key" and not lost[0]:
            lost[0] = True
            raise TransientActuationError("connection reset after the request was sent", code="RequestTimeout")
        return dict(result)

    iam.call = call


async def _undo(kit: Any, *, force: bool = False) -> dict[str, Any]:
    """Undo the kit's one incident (one step); its outcome."""
    incident = next(iter(kit.engine.state.incidents.by_id))
    [outcome] = await Undoer(kit.engine.recorder, kit.registry, kit.iam, force=force).undo(incident)
    return outcome


async def test_retry_after_a_lost_reply_keeps_the_before_state(tmp_path):
    """A retried apply records the state read before the first attempt as prior, so undo restores Active."""
    kit = make_kit(tmp_path, {"rb": CONTAIN})
    _lose_first_update_reply(kit.iam)
    await kit.send()
    [intent] = kit.entries("step.intent")
    [result] = kit.entries("step.result")
    assert intent["before"] == {"status": "Active"}
    assert (result["status"], result["prior"], result["changed"]) == ("ok", {"status": "Active"}, True)
    assert (await _undo(kit))["status"] == "ok"
    assert kit.iam.keys[KEY]["Status"] == "Active"


async def test_undo_stops_when_the_target_changed_since_the_step(tmp_path):
    """Undo is compare-and-set: a key changed by hand since the step is not touched, and the diff is recorded."""
    kit = make_kit(tmp_path, {"rb": CONTAIN})
    await kit.send()
    kit.iam.keys[KEY]["Status"] = "Active"  # someone re-activated it by hand
    updates = kit.iam.count("update_access_key")
    skipped = await _undo(kit)
    assert skipped["status"] == "skipped"
    assert "status: recorded 'Inactive', now 'Active'" in skipped["reason"]
    assert "--force" in skipped["reason"]
    assert kit.iam.count("update_access_key") == updates
    kit.iam.keys[KEY]["Status"] = "Inactive"
    assert (await _undo(kit))["status"] == "ok"
    assert kit.iam.keys[KEY]["Status"] == "Active"


async def test_undo_with_force_proceeds_despite_the_change(tmp_path):
    """--force undoes a step even when the target no longer holds the recorded after-state."""
    kit = make_kit(tmp_path, {"rb": CONTAIN})
    await kit.send()
    kit.iam.keys[KEY]["Status"] = "Active"
    assert (await _undo(kit, force=True))["status"] == "ok"


async def test_a_new_event_reapplies_a_step_whose_state_drifted(tmp_path):
    """A key re-activated by hand is deactivated again by the next distinct finding, recorded as reapplied."""
    kit = make_kit(tmp_path, {"rb": CONTAIN})
    await kit.send(finding_id="f1", updated="2026-11-25T10:00:00.000Z")
    kit.iam.keys[KEY]["Status"] = "Active"
    await kit.send(finding_id="f2", updated="2026-11-25T10:05:00.000Z")
    assert kit.iam.keys[KEY]["Status"] == "Inactive"
    first, again = kit.entries("step.result")
    assert first["status"] == again["status"] == "ok"
    assert again["reapplied"] is True
    assert kit.kinds().count("incident.opened") == 1


async def test_a_new_event_skips_a_step_whose_state_still_holds(tmp_path):
    """Without drift the next distinct finding skips the done step (already_done), with no second update."""
    kit = make_kit(tmp_path, {"rb": CONTAIN})
    await kit.send(finding_id="f1", updated="2026-11-25T10:00:00.000Z")
    await kit.send(finding_id="f2", updated="2026-11-25T10:05:00.000Z")
    assert kit.iam.count("update_access_key") == 1
    assert [s["reason"] for s in kit.entries("step.skipped")] == ["already_done"]


async def test_a_redelivered_event_does_not_reapply(tmp_path):
    """The same finding delivered again is a repeat: no re-check, no second action even after drift."""
    kit = make_kit(tmp_path, {"rb": CONTAIN})
    await kit.send(finding_id="f1")
    kit.iam.keys[KEY]["Status"] = "Active"
    await kit.send(finding_id="f1")
    assert kit.iam.count("update_access_key") == 1
