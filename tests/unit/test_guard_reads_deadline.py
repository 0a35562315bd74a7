"""One step's guard reads through AWS have one total deadline (`Guards.reads_deadline`): reads that hang, or that
one after another (rounds of reads, or the kinds read in turn) take longer, refuse the step as a read that fails does
(fail closed), instead of holding the lane or, for a released decision, the batch gate (responder/engine/guards.py,
docs/fleet.md)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import responder.actuators.aws  # noqa: F401  # registers the AWS actuators
from responder.engine.guards import GuardPolicy, Guards
from responder.engine.iamprincipals import PrincipalForms
from responder.models.runbook import Protected, Runbook
from tests.guard_kit import (
    DEPLOYER,
    IAM_PATHS,
    QUARANTINE,
    ROLE_ID,
    USER_ID,
    IamPaths,
    SettableClock,
    event_naming,
    step_trips,
)
from tests.kit import DEACTIVATE_STEPS, ESCALATE, make_kit

DEADLINE = 0.3
ENDPOINT = {"endpoint_name": "fraud-scoring", "role_names": ["app-worker", "prod-deployer", "break-glass"]}


class SlowIam(IamPaths):
    """IAM answering each read after `delay` seconds."""

    def __init__(self, delay: float) -> None:
        super().__init__(IAM_PATHS)
        self.delay = delay

    async def call(self, service: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        await asyncio.sleep(self.delay)
        return await super().call(service, operation, **kwargs)


def _refusal(iam: SlowIam, actuator: str, with_: dict[str, Any], concurrency: int | None = None) -> str | None:
    """The step's hard trip, its guard reads bounded by DEADLINE (the test fails after 5 s: a read hung), at most
    `concurrency` reads at once (`KeptReads.CONCURRENCY` unless given)."""
    principals = PrincipalForms(iam, clock=SettableClock())
    principals.CONCURRENCY = concurrency or principals.CONCURRENCY
    guards = Guards(GuardPolicy(protected=Protected(ids=[ROLE_ID])), principals=principals)
    guards.reads_deadline = DEADLINE

    async def check() -> str | None:
        async with asyncio.timeout(5):
            return await guards.protected(_rb(actuator, with_), actuator, with_.get("principal_name") or
                                          with_["endpoint_name"], with_, event_naming())

    return asyncio.run(check())


def _rb(actuator: str, with_: dict[str, Any]) -> Runbook:
    return Runbook.model_validate({"id": "rb", "trigger": {"source": "guardduty"}, "group_by": "${event.id}",
                                   "steps": [{"id": "s", "actuator": actuator, "with": with_}]})


def test_a_guard_read_that_hangs_refuses_the_step_at_the_deadline() -> None:
    """IAM never answering within the deadline: the step is refused, saying the reads ran out of time."""
    detail = _refusal(SlowIam(60.0), QUARANTINE, DEPLOYER)
    assert detail is not None
    assert "did not end within 0.3s" in detail


def test_reads_that_together_pass_the_deadline_refuse_the_step() -> None:
    """Sequential guard reads each within the deadline but together past it refuse the step."""
    detail = _refusal(SlowIam(DEADLINE / 2), "aws.sagemaker.isolate_endpoint", ENDPOINT, concurrency=1)
    assert detail is not None
    assert "did not end within" in detail


def test_reads_within_the_deadline_decide_as_before() -> None:
    """Fast reads: the protected role is found by its id (the deadline changes nothing when reads are quick)."""
    assert any(t.hard and ROLE_ID in t.detail for t in step_trips(
        [ROLE_ID], QUARANTINE, DEPLOYER, principals=PrincipalForms(SlowIam(0.0), clock=SettableClock())))


async def test_a_step_refused_for_its_reads_deadline_is_escalated(tmp_path: Path) -> None:
    """IAM hangs on the protected-id read of the user a deactivation names: the step is refused and on-call is told."""
    protected = f"guards: {{protected: {{ids: [{USER_ID}]}}}}\n"
    kit = make_kit(tmp_path, {"rb": protected + DEACTIVATE_STEPS + ESCALATE})
    real = kit.iam.call

    async def call(service: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        if operation == "get_user":
            await asyncio.sleep(60)
        return await real(service, operation, **kwargs)

    kit.iam.call = call  # type: ignore[method-assign]
    kit.engine.guards.reads_deadline = DEADLINE
    async with asyncio.timeout(5):
        await kit.send()
    [result] = [b for b in kit.entries("step.result") if b["step"] == "deactivate"]
    assert result["status"] == "refused"
    assert "did not end within" in result["error"]
    assert [(p.target, p.message) for p in kit.echo.applied] == [("oncall", "deactivate failed")]
    assert kit.iam.count("update_access_key") == 0
