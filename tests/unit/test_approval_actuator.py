"""An approval, or an open intent, stands for the actuator it was given for: a runbook edited under the same version
(another actuator for the same step id, target and parameters) does not inherit it."""

from __future__ import annotations

from pathlib import Path

from tests.kit import HEADER, Kit, decision, make_kit

ECHO = """\
steps:
  - id: act
    actuator: test.echo
    with: {target: t1}
    approval: {required: true, approvers: [alice]}
"""
UNATTENDED = """\
steps:
  - id: act
    actuator: test.echo
    with: {target: t1}
"""


class _Died(BaseException):
    """The process died here (not an error the engine may catch)."""


def _edited(kit: Kit, body: str) -> None:
    """The runbook's step now names the destructive `test.wipe`, its version unchanged; the service restarts."""
    (kit.runbooks_dir / "rb.yaml").write_text(HEADER.format(id="rb") + body.replace("test.echo", "test.wipe"))
    kit.start()


async def test_an_approval_given_for_one_actuator_does_not_release_another_of_the_same_version(tmp_path: Path) -> None:
    """An approval asked for test.echo, its runbook edited to test.wipe (same version): nothing runs, asked again."""
    kit = make_kit(tmp_path, {"rb": ECHO})
    await kit.send()
    incident = next(iter(kit.engine.state.incidents.by_id))
    _edited(kit, ECHO)
    await kit.engine.decide(*decision(kit, incident, "act"))
    await kit.engine.recorder.flush()
    assert kit.wipe.applied == []
    assert kit.echo.applied == []
    [rejected] = kit.entries("approval.rejected")
    assert "test.echo" in rejected["reason"]
    assert "test.wipe" in rejected["reason"]
    assert [r["actuator"] for r in kit.entries("approval.requested")] == ["test.echo", "test.wipe"]


async def test_an_open_intent_of_one_actuator_does_not_run_another_unasked(tmp_path: Path) -> None:
    """A crash leaves test.echo's intent open; edited to test.wipe (same version), its redelivery parks, runs none."""
    kit = make_kit(tmp_path, {"rb": UNATTENDED})

    async def dies(p: object, ctx: object) -> None:
        raise _Died

    kit.echo.apply = dies  # type: ignore[method-assign,assignment]
    try:
        await kit.send()
    except _Died:
        kit.store.rollback()
    assert [i["actuator"] for i in kit.entries("step.intent")] == ["test.echo"]
    _edited(kit, UNATTENDED)
    await kit.send()
    assert kit.wipe.applied == []
    assert [r["actuator"] for r in kit.entries("approval.requested")] == ["test.wipe"]
