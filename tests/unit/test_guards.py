"""Guards: quotas, max targets, protected resources and the kill switch never act silently."""

from __future__ import annotations

from responder.engine.guards import GuardPolicy
from responder.models.event import ResourceKind
from responder.models.runbook import Protected, Quota
from responder.normalise import normalise
from responder.rules.matcher import Match
from tests.findings import envelope_bytes, guardduty_finding
from tests.kit import DEACTIVATE_STEPS, ECHO, KEY, make_kit


async def test_quota_trip_turns_the_step_into_an_approval_request(tmp_path):
    """The third run inside the window trips the quota: guard.tripped and approval.requested, no call."""
    kit = make_kit(tmp_path, {"rb": ECHO.format(guards="guards: {quotas: [{actuator: test.*, max: 2, window: 1h}]}")})
    for i in range(3):
        await kit.send(key=f"AKIAABCDEFGHIJKLMNO{i}", user=f"user-{i}")
    assert [p.target for p in kit.echo.applied] == ["user-0", "user-1"]
    [trip] = kit.entries("guard.tripped")
    assert trip["guard"] == "quota"
    assert trip["target"] == "user-2"
    assert kit.entries("approval.requested")[0]["reasons"][0].startswith("quota:")


async def test_quota_window_slides(tmp_path):
    """Once the window has passed, the quota allows runs again."""
    guards = "guards: {quotas: [{actuator: test.echo, max: 1, window: 60}]}"
    kit = make_kit(tmp_path, {"rb": ECHO.format(guards=guards)})
    await kit.send(key="AKIAABCDEFGHIJKLMNO1", user="user-1")
    kit.clock.now += 61
    await kit.send(key="AKIAABCDEFGHIJKLMNO2", user="user-2")
    assert len(kit.echo.applied) == 2
    assert kit.entries("guard.tripped") == []


async def test_global_quota_counts_across_runbooks(tmp_path):
    """A global quota from settings spans runbooks."""
    policy = GuardPolicy(quotas=[Quota(actuator="test.echo", max=1, window=3600)])
    kit = make_kit(tmp_path, {"a": ECHO.format(guards=""), "b": ECHO.format(guards="")}, policy=policy)
    await kit.send()
    assert len(kit.echo.applied) == 1
    assert kit.entries("guard.tripped")[0]["detail"].startswith("global")


async def test_quota_survives_restart(tmp_path):
    """Executions recorded on the timeline still count after a restart."""
    kit = make_kit(tmp_path, {"rb": ECHO.format(guards="guards: {quotas: [{actuator: '*', max: 1, window: 1h}]}")})
    await kit.send(key="AKIAABCDEFGHIJKLMNO1", user="user-1")
    kit.start()
    await kit.send(key="AKIAABCDEFGHIJKLMNO2", user="user-2")
    assert len(kit.echo.applied) == 1
    assert kit.entries("guard.tripped")


async def test_max_targets_per_plan(tmp_path):
    """A plan with more distinct targets than allowed asks a human before its first step."""
    body = """\
guards: {max_targets: 1}
steps:
  - {id: one, actuator: test.echo, with: {target: a}}
  - {id: two, actuator: test.echo, with: {target: b}}
"""
    kit = make_kit(tmp_path, {"rb": body})
    await kit.send()
    assert kit.echo.applied == []
    assert kit.entries("guard.tripped")[0]["guard"] == "max_targets"


async def test_protected_id_is_refused_even_with_approval(tmp_path):
    """A protected resource is never touched: the step is refused outright, not parked."""
    body = ECHO.format(guards="guards: {protected: {ids: ['ml-*']}}")
    kit = make_kit(tmp_path, {"rb": body})
    await kit.send()
    assert kit.echo.applied == []
    assert kit.entries("approval.requested") == []
    [result] = kit.entries("step.result")
    assert result["status"] == "refused"
    assert kit.entries("guard.tripped")[0]["hard"] is True


async def test_protected_tag_on_the_event_resource(tmp_path):
    """A target whose resource in the event carries a protected tag is refused (global setting)."""
    policy = GuardPolicy(protected=Protected(tags={"responder:protected": "*"}))
    body = DEACTIVATE_STEPS
    kit = make_kit(tmp_path, {"rb": body}, policy=policy)
    [event] = normalise(envelope_bytes(guardduty_finding(KEY)))
    key = event.first(ResourceKind.ACCESS_KEY)
    assert key is not None
    tags = [{"Key": "responder:protected", "Value": "1"}]
    tagged = key.model_copy(update={"attributes": {**key.attributes, "tags": tags}})
    await kit.engine.handle(Match(kit.pipeline.matcher.runbooks[0], event.model_copy(update={"resources": (tagged,)})))
    await kit.engine.recorder.flush()
    assert kit.iam.count("update_access_key") == 0
    assert kit.entries("step.result")[0]["status"] == "refused"
    assert "protected tag" in kit.entries("guard.tripped")[0]["detail"]


async def test_kill_switch_file_parks_every_step(tmp_path):
    """While the kill-switch file exists every step becomes an approval request."""
    switch = tmp_path / "STOP"
    kit = make_kit(tmp_path, {"rb": ECHO.format(guards="")}, policy=GuardPolicy(kill_switch_file=switch))
    switch.touch()
    await kit.send(key="AKIAABCDEFGHIJKLMNO1", user="user-1")
    switch.unlink()
    await kit.send(key="AKIAABCDEFGHIJKLMNO2", user="user-2")
    assert [p.target for p in kit.echo.applied] == ["user-2"]
    assert kit.entries("guard.tripped")[0]["guard"] == "kill_switch"


def test_settings_build_global_guards():
    """Global guards come from settings; a malformed quota is a configuration error naming the setting."""
    import pytest

    from responder.errors import ConfigError
    from responder.service import guards_from
    from responder.settings import Settings

    guards = guards_from(Settings(guard_quotas=[{"actuator": "aws.iam.*", "max": 5, "window": "15m"}],
                                  protected_ids=["break-glass-*"], kill_switch=True))
    assert guards.policy.quotas[0].window == 900
    assert guards.policy.killed()
    with pytest.raises(ConfigError, match="RESPONDER_GUARD_QUOTAS"):
        guards_from(Settings(guard_quotas=[{"actuator": "x", "window": "soon"}]))


DEACTIVATE = "guards: {quotas: [{actuator: aws.iam.*, max: 2, window: 1h}]}\n" + DEACTIVATE_STEPS


async def test_bogus_alerts_naming_missing_targets_cannot_exhaust_the_quota(tmp_path):
    """Five findings naming keys that do not exist fail permanently and spend no quota, even after a restart."""
    kit = make_kit(tmp_path, {"rb": DEACTIVATE})
    for i in range(5):
        await kit.send(key=f"AKIABOGUSBOGUSBOGUS{i}", user="ghost")
    assert [r["status"] for r in kit.entries("step.result")] == ["failed"] * 5
    kit.start()  # the windows are rebuilt from the timeline
    await kit.send()
    assert kit.entries("guard.tripped") == []
    assert kit.entries("step.result")[-1]["status"] == "ok"
    assert kit.iam.keys[KEY]["Status"] == "Inactive"
