"""Approvals: parking, signed decisions bound to the plan digest, expiry, on_timeout, restart."""

from __future__ import annotations

from responder.models.approval import REQUESTS_TOPIC
from tests.kit import KEY, WIPE, decision, make_kit


def _incident(kit) -> str:
    return next(iter(kit.engine.state.incidents.by_id))


async def test_destructive_step_parks_and_publishes_a_request(tmp_path):
    """A destructive actuator needs approval by default: nothing runs, a request is published and recorded."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny"})
    await kit.send()
    assert kit.wipe.applied == []
    assert kit.echo.applied == []
    [req] = kit.entries("approval.requested")
    assert req["reasons"] == ["test.wipe is destructive"]
    [(topic, key, _)] = kit.publisher.sent
    assert topic == REQUESTS_TOPIC
    assert key == _incident(kit).encode()


async def test_signed_approval_runs_the_step_and_the_rest(tmp_path):
    """A valid signed approval from a listed approver runs the parked step, then the later steps."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny"})
    await kit.send()
    assert await kit.engine.decide(*decision(kit, _incident(kit), "wipe"))
    assert [p.target for p in kit.wipe.applied] == ["t1"]
    assert [p.target for p in kit.echo.applied] == ["t2"]
    assert kit.entries("approval.decided")[0]["by"] == "alice"


async def test_forged_or_unbound_decisions_are_refused_and_recorded(tmp_path):
    """Bad signature, other digest, expired decision or unlisted approver: nothing runs, each is recorded."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny"})
    await kit.send()
    inc = _incident(kit)
    attempts = [
        decision(kit, inc, "wipe", secret=b"wrong"),
        decision(kit, inc, "wipe", digest="a" * 64),
        decision(kit, inc, "wipe", ttl=-1),
        decision(kit, inc, "wipe", by="mallory"),
        decision(kit, inc, "other-step"),
    ]
    for value, key_id, sig in attempts:
        assert not await kit.engine.decide(value, key_id, sig)
    await kit.engine.recorder.flush()  # a refusal is durable with the next group commit, not alone
    reasons = [r["reason"] for r in kit.entries("approval.rejected")]
    assert len(reasons) == 5
    assert "bad signature" in reasons[0]
    assert "digest" in reasons[1]
    assert "expired" in reasons[2]
    assert "belongs to 'alice'" in reasons[3]
    assert "no approval is pending" in reasons[4]
    assert kit.wipe.applied == []


async def test_by_must_be_the_signing_keys_identity_and_an_approver(tmp_path):
    """Bob's key cannot sign as alice, bob is not an approver, an unbound key satisfies no approver list."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny"})
    await kit.send()
    inc = _incident(kit)
    attempts = [
        decision(kit, inc, "wipe", by="alice", key_id="k-bob", secret=b"bob-secret"),
        decision(kit, inc, "wipe", by="bob", key_id="k-bob", secret=b"bob-secret"),
        decision(kit, inc, "wipe", by="alice", key_id="k-nobody", secret=b"nobody-secret"),
    ]
    for value, key_id, sig in attempts:
        assert not await kit.engine.decide(value, key_id, sig)
    await kit.engine.recorder.flush()  # a refusal is durable with the next group commit, not alone
    reasons = [r["reason"] for r in kit.entries("approval.rejected")]
    assert "key 'k-bob' belongs to 'bob'" in reasons[0]
    assert "'bob' is not an approver" in reasons[1]
    assert "bound to no identity" in reasons[2]
    assert kit.wipe.applied == []
    assert await kit.engine.decide(*decision(kit, inc, "wipe"))
    assert [p.target for p in kit.wipe.applied] == ["t1"]


async def test_a_decision_living_longer_than_the_maximum_is_refused(tmp_path):
    """A decision whose expires_at is ten years ahead is refused (max lifetime 1 h here); nothing runs."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny"})
    await kit.send()
    assert not await kit.engine.decide(*decision(kit, _incident(kit), "wipe", ttl=10 * 365 * 86400))
    await kit.engine.recorder.flush()  # a refusal is durable with the next group commit, not alone
    assert "lifetime" in kit.entries("approval.rejected")[0]["reason"]
    assert kit.wipe.applied == []


async def test_denial_stops_the_plan(tmp_path):
    """A denied step is recorded as denied; with on_failure stop the later steps do not run."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny"})
    await kit.send()
    assert await kit.engine.decide(*decision(kit, _incident(kit), "wipe", "deny"))
    assert [r["status"] for r in kit.entries("step.result")] == ["denied"]
    assert kit.wipe.applied == []
    assert kit.echo.applied == []


async def test_timeout_deny(tmp_path):
    """on_timeout deny: after the deadline the step is recorded denied and never runs."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny"})
    await kit.send()
    assert await kit.engine.expire() == 0
    kit.clock.now += 601
    assert await kit.engine.expire() == 1
    assert "approval.expired" in kit.kinds()
    assert [r["status"] for r in kit.entries("step.result")] == ["denied"]


async def test_timeout_approve_runs_non_destructive_step(tmp_path):
    """on_timeout approve runs a step that required approval once the deadline passes."""
    body = WIPE.replace("test.wipe", "test.echo").replace("approvers", "required: true, approvers") % "approve"
    kit = make_kit(tmp_path, {"rb": body})
    await kit.send()
    assert kit.echo.applied == []
    kit.clock.now += 601
    await kit.engine.expire()
    assert [p.target for p in kit.echo.applied] == ["t1", "t2"]


async def test_timeout_escalate_republishes_once_then_denies(tmp_path):
    """on_timeout escalate re-publishes the request marked escalated, then denies at the second deadline."""
    kit = make_kit(tmp_path, {"rb": WIPE % "escalate"})
    await kit.send()
    kit.clock.now += 601
    await kit.engine.expire()
    assert len(kit.publisher.sent) == 2
    assert b'"escalated":true' in kit.publisher.sent[1][2]
    assert kit.entries("step.result") == []
    kit.clock.now += 601
    await kit.engine.expire()
    assert [r["status"] for r in kit.entries("step.result")] == ["denied"]


async def test_parked_step_survives_restart(tmp_path):
    """A new engine rebuilt from the timeline still holds the parked step and resumes it on approval."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny"})
    await kit.send()
    inc = _incident(kit)
    kit.start()
    assert kit.engine.state.parked(inc, "wipe") is not None
    assert await kit.engine.decide(*decision(kit, inc, "wipe"))
    assert [p.target for p in kit.wipe.applied] == ["t1"]


async def test_repeated_event_while_parked_requests_nothing_new(tmp_path):
    """A second alert for a parked incident is recorded as joined and does not publish a second request."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny"})
    await kit.send(finding_id="f1")
    await kit.send(finding_id="f2")
    assert len(kit.publisher.sent) == 1
    assert kit.kinds().count("incident.joined") == 1


async def test_decided_step_is_not_requested_again(tmp_path):
    """After a denial, a later alert for the same incident does not ask again (the denial is the result)."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny"})
    await kit.send(finding_id="f1")
    await kit.engine.decide(*decision(kit, _incident(kit), "wipe", "deny"))
    await kit.send(finding_id="f2")
    assert len(kit.publisher.sent) == 1
    assert KEY in str(kit.entries("incident.joined"))


async def test_approval_does_not_cover_changed_parameters(tmp_path):
    """If the step's parameters changed after the request, the approval is refused and a new request is made."""
    body = """\
steps:
  - id: note
    actuator: test.echo
    with: {target: t1, message: "events=${incident.events}"}
    approval: {required: true}
"""
    kit = make_kit(tmp_path, {"rb": body})
    await kit.send(finding_id="f1")
    await kit.send(finding_id="f2")
    assert await kit.engine.decide(*decision(kit, _incident(kit), "note"))
    assert kit.echo.applied == []
    assert "changed" in kit.entries("approval.rejected")[0]["reason"]
    assert len(kit.entries("approval.requested")) == 2


async def test_timeout_approve_never_waives_a_guard_trip(tmp_path):
    """A step parked by the kill switch stays unrun when its on_timeout approve deadline passes."""
    from responder.engine.guards import GuardPolicy

    body = WIPE.replace("test.wipe", "test.echo").replace("approvers", "required: true, approvers") % "approve"
    kit = make_kit(tmp_path, {"rb": body}, policy=GuardPolicy(kill_switch=True))
    await kit.send()
    kit.clock.now += 601
    await kit.engine.expire()
    assert kit.echo.applied == []
    assert [r["status"] for r in kit.entries("step.result")] == ["denied"]


class _Died(BaseException):
    """The process died here (not an error the engine may catch)."""


async def test_timeout_approved_step_killed_after_it_applied_is_resolved_once_after_restart(tmp_path):
    """on_timeout approve, then a crash after the apply: the restart verifies the open intent, no re-apply."""
    body = WIPE.replace("test.wipe", "test.echo").replace("approvers", "required: true, approvers") % "approve"
    kit = make_kit(tmp_path, {"rb": body})
    await kit.send()
    applied = kit.echo.apply

    async def dies_after(p, ctx):
        await applied(p, ctx)
        raise _Died

    kit.echo.apply = dies_after  # type: ignore[method-assign]
    kit.clock.now += 601
    try:
        await kit.engine.expire()
    except _Died:
        kit.store.rollback()
    kit.echo.apply = applied  # type: ignore[method-assign]
    kit.start()  # restart: replay grants the expired-approved step again, its intent open
    assert [p.step for p in kit.engine.state.granted()] == ["wipe"]
    await kit.engine.expire()
    await kit.engine.expire()
    await kit.engine.recorder.flush()
    assert [p.target for p in kit.echo.applied] == ["t1", "t2"]
    results = {r["step"]: r for r in kit.entries("step.result")}
    assert results["wipe"]["recovered"] is True
    assert results["note"]["status"] == "ok"
    assert kit.engine.state.granted() == []
