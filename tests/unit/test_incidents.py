"""Incidents: grouping within the window, repeats on the timeline, cooldown, dry-run plans."""

from __future__ import annotations

from tests.kit import DEACTIVATE_STEPS, KEY, make_kit

ECHO = """\
{extra}
steps:
  - id: note
    actuator: test.echo
    with: {{target: t1, message: "${{event.id}}"}}
"""


async def test_same_key_within_window_joins_and_does_not_rerun(tmp_path):
    """A second alert for the same key joins the incident, is recorded, and the done step is skipped."""
    kit = make_kit(tmp_path, {"rb": ECHO.format(extra="window: 1h")})
    await kit.send(finding_id="f1", updated="2026-11-25T10:00:00.000Z")
    await kit.send(finding_id="f2", updated="2026-11-25T10:30:00.000Z")
    assert len(kit.echo.applied) == 1
    assert kit.kinds().count("incident.opened") == 1
    [joined] = kit.entries("incident.joined")
    assert joined["repeat"] is False
    assert [s["reason"] for s in kit.entries("step.skipped")] == ["already_done"]


async def test_redelivered_event_is_marked_repeat(tmp_path):
    """The very same alert twice is recorded as a repeat on the incident's timeline."""
    kit = make_kit(tmp_path, {"rb": ECHO.format(extra="")})
    await kit.send(finding_id="f1")
    await kit.send(finding_id="f1")
    assert kit.entries("incident.joined")[0]["repeat"] is True


async def test_after_the_window_a_new_incident_opens(tmp_path):
    """An alert after the window opens a second incident that acts again."""
    kit = make_kit(tmp_path, {"rb": ECHO.format(extra="window: 10m")})
    await kit.send(finding_id="f1", updated="2026-11-25T10:00:00.000Z")
    await kit.send(finding_id="f2", updated="2026-11-25T11:00:00.000Z")
    assert kit.kinds().count("incident.opened") == 2
    assert len(kit.echo.applied) == 2


async def test_cooldown_suppresses_a_new_incident(tmp_path):
    """Within the cooldown after an incident opened, a new one is suppressed and recorded, not run."""
    kit = make_kit(tmp_path, {"rb": ECHO.format(extra="window: 10m\ncooldown: 2h")})
    await kit.send(finding_id="f1", updated="2026-11-25T10:00:00.000Z")
    await kit.send(finding_id="f2", updated="2026-11-25T11:00:00.000Z")
    await kit.send(finding_id="f3", updated="2026-11-25T12:30:00.000Z")
    assert kit.kinds().count("incident.suppressed") == 1
    assert kit.kinds().count("incident.opened") == 2
    assert len(kit.echo.applied) == 2


async def test_different_keys_open_different_incidents(tmp_path):
    """Alerts with different group keys never share an incident."""
    kit = make_kit(tmp_path, {"rb": ECHO.format(extra="")})
    await kit.send(key=KEY)
    await kit.send(key="AKIAABCDEFGHIJKLMNO2")
    assert kit.kinds().count("incident.opened") == 2


async def test_mode_dry_run_records_the_full_plan_and_calls_nothing(tmp_path):
    """mode: dry_run records step.planned with concrete params, digest and would-be approvals; no actuator runs."""
    body = """\
mode: dry_run
steps:
  - {id: note, actuator: test.echo, with: {target: t1, message: "${event.resource.access_key.id}"}}
  - {id: wipe, actuator: test.wipe, with: {target: t2}}
"""
    kit = make_kit(tmp_path, {"rb": body})
    await kit.send()
    planned = kit.entries("step.planned")
    assert [p["params"] for p in planned] == [{"target": "t1", "message": KEY}, {"target": "t2", "message": ""}]
    assert planned[1]["would_require_approval"] == ["test.wipe is destructive"]
    assert len({p["digest"] for p in planned}) == 1
    assert kit.echo.applied == []
    assert kit.wipe.applied == []
    assert kit.publisher.sent == []


async def test_run_dry_run_flag_overrides_enforce(tmp_path):
    """The service-wide dry-run flag plans an enforce runbook without calling IAM."""
    body = DEACTIVATE_STEPS
    kit = make_kit(tmp_path, {"rb": body}, dry_run=True)
    await kit.send()
    assert kit.entries("step.planned")[0]["summary"].startswith("set access key")
    assert kit.iam.calls == []


async def test_step_outputs_feed_later_steps(tmp_path):
    """${steps.<id>.result.…} binds an earlier step's output into a later step."""
    body = """\
steps:
  - {id: first, actuator: test.echo, with: {target: t1, message: hello}}
  - {id: second, actuator: test.echo, with: {target: t2, message: "got ${steps.first.result.message}"}}
"""
    kit = make_kit(tmp_path, {"rb": body})
    await kit.send()
    assert [p.message for p in kit.echo.applied] == ["hello", "got hello"]
