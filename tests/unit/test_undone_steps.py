"""A step an operator undid is not applied again by a later event of the same incident: the skip is recorded with who
undid it and at which timeline seq, on-call is told once, and the mark survives a restart and a partition handover;
a new incident, once the old one closed, acts as usual. With the engine kit's fake IAM."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from responder.actuators.base import ActuationContext
from responder.auth import KeyRing
from responder.cli import app
from responder.engine.operator import Operator
from responder.engine.partitions import merge
from responder.engine.snapshot import EngineSnapshot
from responder.engine.undo import Undoer
from responder.errors import ConfigError
from responder.models.operator import OperatorRequest
from responder.settings import Settings
from responder.timeline import Recorder
from tests.kit import ESCALATE, HEADER, KEY, Kit, deactivate_key_step, make_kit
from tests.operator_kit import ALL, SECRET, operator_request

CONTAIN = "window: 10m\ncooldown: 5m\nsteps:\n" + deactivate_key_step(0) + ESCALATE
T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC).timestamp()


async def _contained(tmp_path: Any) -> tuple[Kit, str]:
    """The key deactivated by finding f1; the incident's id."""
    kit = make_kit(tmp_path, {"rb": CONTAIN})
    kit.clock.now = T0
    await kit.send(finding_id="f1", updated="2026-11-25T10:00:00.000Z")
    assert kit.iam.keys[KEY]["Status"] == "Inactive"
    [incident] = kit.engine.state.incidents.by_id
    return kit, incident


async def _undone_by_alice(kit: Kit, incident: str) -> int:
    """alice's undo of the incident, as the running service executes it (an operator request); its undo.result seq."""
    reply = await _asked(kit, "undo", incident)
    assert reply.ok, reply
    assert kit.iam.keys[KEY]["Status"] == "Active"
    [seq] = [e.seq for e in Recorder(kit.store).entries() if e.kind == "undo.result"]
    return seq


def _skips(kit: Kit) -> list[dict[str, Any]]:
    return [b for b in kit.entries("step.skipped") if b.get("reason") == "undone"]


@pytest.mark.parametrize("redeployed", [False, True], ids=["same-version", "rb-redeployed-as-version-2"])
async def test_a_new_event_does_not_reapply_a_step_an_operator_undid(tmp_path, redeployed):
    """After alice's undo (and a restart with rb at version 2), f2 leaves the key Active, skipped: undone by alice."""
    kit, incident = await _contained(tmp_path)
    seq = await _undone_by_alice(kit, incident)
    if redeployed:  # the step key names the runbook's version: the new one has no result of its own
        (kit.runbooks_dir / "rb.yaml").write_text(HEADER.format(id="rb") + "version: 2\n" + CONTAIN)
        kit.start()
    kit.clock.now += 60
    await kit.send(finding_id="f2", updated="2026-11-25T10:01:00.000Z")
    assert kit.iam.keys[KEY]["Status"] == "Active"
    [skip] = _skips(kit)
    assert (skip["step"], skip["undone_by"], skip["undone_seq"]) == ("deactivate-key", "alice", seq)
    assert [r["step"] for r in kit.entries("step.result") if r["actuator"] == "aws.iam.deactivate_access_key"] \
        == ["deactivate-key"]


DELETE = """\
  - id: deactivate-key
    actuator: aws.iam.delete_access_key
    approval: {required: true, approvers: [alice], timeout: 10m, on_timeout: deny}
    with:
      user_name: ${event.resource.access_key.attributes.user_name}
      access_key_id: ${event.resource.access_key.id}
"""


async def test_a_redeployed_step_that_now_runs_another_actuator_is_not_left_undone(tmp_path):
    """rb v2's deactivate-key now deletes the key (approval required): not skipped as undone, its approval is asked."""
    kit, incident = await _contained(tmp_path)
    await _undone_by_alice(kit, incident)
    (kit.runbooks_dir / "rb.yaml").write_text(
        HEADER.format(id="rb") + "version: 2\nwindow: 10m\ncooldown: 5m\nsteps:\n" + DELETE + ESCALATE)
    kit.start()
    kit.clock.now += 60
    await kit.send(finding_id="f2", updated="2026-11-25T10:01:00.000Z")
    assert _skips(kit) == []
    assert [b["actuator"] for b in kit.entries("approval.requested")] == ["aws.iam.delete_access_key"]


async def test_on_call_is_told_once_that_an_undone_step_was_left(tmp_path):
    """The first new event after the undo runs the runbook's on_failure (told once); later events tell nobody."""
    kit, incident = await _contained(tmp_path)
    seq = await _undone_by_alice(kit, incident)
    for n in (2, 3):
        kit.clock.now += 60
        await kit.send(finding_id=f"f{n}", updated=f"2026-11-25T10:0{n}:00.000Z")
    assert [e.message for e in kit.echo.applied] == ["deactivate-key failed"]
    [escalated, *_] = kit.entries("step.escalated")
    assert (escalated["status"], escalated["code"]) == ("skipped", "Undone")
    assert f"undone by alice at timeline seq {seq}" in escalated["error"]
    assert len(_skips(kit)) == 2
    assert kit.iam.keys[KEY]["Status"] == "Active"


async def test_an_undone_step_stays_undone_after_a_restart(tmp_path):
    """The mark is rebuilt from the timeline: after a restart (also of an offline undo) a new event leaves it undone."""
    kit, incident = await _contained(tmp_path)
    outcomes = await Undoer(kit.engine.recorder, kit.registry, kit.iam).undo(incident)  # offline: no engine state
    assert [o["status"] for o in outcomes] == ["ok"]
    kit.start()
    kit.clock.now += 60
    await kit.send(finding_id="f2", updated="2026-11-25T10:01:00.000Z")
    assert kit.iam.keys[KEY]["Status"] == "Active"
    [skip] = _skips(kit)
    assert skip["undone_by"] is None


async def test_an_undone_step_stays_undone_after_a_partition_handover(tmp_path):
    """The mark travels in the incident's changelog slice: a replica that adopts it does not re-apply the step."""
    kit, incident = await _contained(tmp_path)
    await _undone_by_alice(kit, incident)
    [part] = kit.engine.state.slices({incident}).values()
    kit.engine.state.clear()  # the adopting replica knows only what the changelog carries
    merge(kit.engine.state, [EngineSnapshot.model_validate_json(part.model_dump_json())])
    kit.clock.now += 60
    await kit.send(finding_id="f2", updated="2026-11-25T10:01:00.000Z")
    assert kit.iam.keys[KEY]["Status"] == "Active"
    assert [s["undone_by"] for s in _skips(kit)] == ["alice"]


async def test_a_new_incident_after_the_undone_one_closed_acts_normally(tmp_path):
    """Once the incident closed (window and cooldown passed, evicted), a new finding opens one that contains again."""
    kit, incident = await _contained(tmp_path)
    await _undone_by_alice(kit, incident)
    kit.clock.now += 16 * 60
    assert kit.engine.evict() == [incident]
    await kit.send(finding_id="f9", updated="2026-11-25T10:20:00.000Z")
    assert kit.iam.keys[KEY]["Status"] == "Inactive"
    assert not _skips(kit)


async def _asked(kit: Kit, action: str, incident: str, **args: object) -> Any:
    """An operator request of alice's (`ops` may send every command), run as the running service runs it."""
    operator = Operator(kit.engine.recorder, kit.registry, ActuationContext(aws=kit.iam),
                        keys=KeyRing({"ops": SECRET}), clock=kit.clock, permissions=ALL, state=kit.engine.state)
    at = datetime.fromtimestamp(kit.clock(), UTC)
    return await operator.handle(*operator_request(action=action, incident=incident, args=args, issued_at=at,
                                                   expires_at=at + timedelta(hours=1)))


def test_no_command_re_applies_an_undone_step():
    """No `responder redo` command, `redo` operator action or permission: an undone step is re-applied by hand."""
    assert CliRunner().invoke(app, ["redo", "inc1", "--step", "deactivate-key"]).exit_code == 2  # no such command
    at = datetime.fromtimestamp(T0, UTC)
    with pytest.raises(ValidationError):
        OperatorRequest.model_validate({"id": "0" * 32, "action": "redo", "by": "alice", "incident": "inc1",
                                        "issued_at": at, "expires_at": at + timedelta(minutes=5)})
    with pytest.raises(ConfigError, match="RESPONDER_OPERATOR_PERMISSIONS"):
        Settings(operator_permissions={"ops": ["redo"]})
