"""Every AWS actuator against the moto server: changes state once, verify sees drift, undo restores, retries."""

from __future__ import annotations

from typing import Any

import pytest

from responder.actuators import registry
from responder.actuators.base import ActuationContext, ActuationResult
from responder.actuators.retry import with_retries
from responder.engine.undo import Undoer
from responder.errors import TransientActuationError
from responder.models.timeline import EntryKind
from responder.timeline import MemoryStore, Recorder
from tests.integration.actuator_cases import CASES, Case, throttle

pytestmark = pytest.mark.integration
INCIDENT = "inc0123456789abcdef0"
KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
BY_NAME = {c.actuator: c for c in CASES}


def _ctx(aws: Any) -> ActuationContext:
    return ActuationContext(aws=aws, incident=INCIDENT, key=KEY)


async def _apply(case: Case, aws: Any, params: dict[str, Any]) -> tuple[Any, ActuationResult]:
    actuator = registry.get(case.actuator)
    p = actuator.params.model_validate(params)
    return p, await actuator.apply(p, _ctx(aws))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.actuator)
async def test_apply_changes_state_once(case, aws):
    """The first apply changes the state, returns only declared outputs and verifies; the second changes nothing."""
    params = await case.setup(aws)
    before = await case.observe(aws, params)
    p, first = await _apply(case, aws, params)
    after = await case.observe(aws, params)
    assert first.changed is True
    assert set(first.outputs) <= set(registry.get(case.actuator).example_outputs)
    assert after != before
    assert await registry.get(case.actuator).verify(p, _ctx(aws)) is True
    _, second = await _apply(case, aws, params)
    assert second.changed is False
    assert await case.observe(aws, params) == after


@pytest.mark.parametrize("case", [c for c in CASES if c.drift], ids=lambda c: c.actuator)
async def test_verify_detects_drift_back(case, aws):
    """After the state is pushed back out of band, verify reports False and a new apply fixes it."""
    params = await case.setup(aws)
    p, _ = await _apply(case, aws, params)
    await case.drift(aws, params)
    actuator = registry.get(case.actuator)
    assert await actuator.verify(p, _ctx(aws)) is False
    again = await actuator.apply(p, _ctx(aws))
    assert again.changed is True
    assert await actuator.verify(p, _ctx(aws)) is True


def _record(recorder: Recorder, name: str, params: Any, result: ActuationResult) -> None:
    head = {"step": "contain", "actuator": name, "target": result.target, "key": KEY}
    recorder.append(EntryKind.STEP_INTENT, {**head, "params": params.model_dump(mode="json")}, INCIDENT)
    recorder.append(EntryKind.STEP_RESULT, {**head, "status": "ok", "changed": result.changed, "verified": True,
                                            "prior": result.prior, "after": result.after,
                                            "outputs": result.outputs}, INCIDENT)


@pytest.mark.parametrize("case", [c for c in CASES if registry.get(c.actuator).reverse],
                         ids=lambda c: c.actuator)
async def test_undo_restores_prior_state(case, aws):
    """Undo from the recorded step.result runs the reverse actuator and the observed state is as before."""
    params = await case.setup(aws)
    before = await case.observe(aws, params)
    p, result = await _apply(case, aws, params)
    recorder = Recorder(MemoryStore())
    _record(recorder, case.actuator, p, result)
    outcomes = await Undoer(recorder, registry, aws).undo(INCIDENT)
    assert [(o["status"], o["verified"]) for o in outcomes] == [("ok", True)]
    assert case.undo_view(await case.observe(aws, params), params) == case.undo_view(before, params)
    kinds = [e.kind for e in recorder.entries()]
    assert kinds[-2:] == ["undo.intent", "undo.result"]
    assert await Undoer(recorder, registry, aws).undo(INCIDENT) == []


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.actuator)
async def test_throttling_is_retried_then_succeeds(case, aws):
    """Two injected ThrottlingException responses are retried with backoff and the apply then succeeds."""
    params = await case.setup(aws)
    before = await case.observe(aws, params)
    failed = throttle(aws, case.service, 2)
    actuator = registry.get(case.actuator)
    p = actuator.params.model_validate(params)
    result = await with_retries(lambda: actuator.apply(p, _ctx(aws)), attempts=4, deadline=30, initial=0.01,
                                maximum=0.05)
    assert len(failed) == 2
    assert result.changed is True
    assert await case.observe(aws, params) != before


async def test_exhausted_retries_raise_transient(aws):
    """A 503 on every call exhausts the attempts and surfaces as TransientActuationError, state untouched."""
    case = BY_NAME["aws.kms.disable_key"]
    params = await case.setup(aws)
    failed = throttle(aws, "kms", 100, code="ServiceUnavailable", status=503)
    actuator = registry.get(case.actuator)
    p = actuator.params.model_validate(params)
    with pytest.raises(TransientActuationError):
        await with_retries(lambda: actuator.apply(p, _ctx(aws)), attempts=3, deadline=30, initial=0.01, maximum=0.02)
    assert len(failed) == 3


async def test_restoring_a_policy_of_a_missing_user_fails(aws):
    """The undo of revoke-sessions for a user that does not exist is an error, not a quiet `ok`."""
    from responder.errors import PermanentActuationError

    actuator = registry.get("aws.iam.restore_inline_policy")
    p = actuator.params.model_validate({"principal_type": "user", "principal_name": "no-such-user-here",
                                        "policy_name": "responder-revoke-older-sessions"})
    with pytest.raises(PermanentActuationError, match="no-such-user-here"):
        await actuator.apply(p, _ctx(aws))
