"""Against moto, through the engine: a SageMaker isolation that denied one role and failed on a missing one stays
counted in its quota, records the role it denied, says so in the escalation, and `responder undo` releases it."""

from __future__ import annotations

from pathlib import Path

import pytest

from responder.actuators import registry
from responder.actuators.aws.sagemaker import policy_name
from responder.actuators.aws.session import AwsSession
from responder.actuators.registry import Registry
from responder.catalog import load_runbooks
from responder.engine import Engine
from responder.engine.undo import Undoer
from responder.errors import PermanentActuationError
from responder.models import RawRecord
from responder.pipeline import Pipeline
from responder.timeline import MemoryStore, Recorder
from tests.fakes import Echo
from tests.findings import envelope_bytes, guardduty_finding
from tests.integration.actuator_cases import CASES

pytestmark = pytest.mark.integration

RUNBOOK = """\
id: isolate-endpoint
trigger: {source: guardduty, type: "*IAMUser/*"}
group_by: "${event.resource.access_key.id}"
guards:
  quotas: [{actuator: "aws.sagemaker.*", max: 5, window: 1h}]
steps:
  - id: isolate
    actuator: aws.sagemaker.isolate_endpoint
    retries: 0
    with: {endpoint_name: fraud-scoring-prod, role_names: [inference-gateway, ghost-role]}
on_failure:
  - id: page
    actuator: test.echo
    with: {target: oncall, message: "${failure.step} failed: ${failure.error}"}
"""


async def _deny(aws: AwsSession, role: str) -> object:
    try:
        return (await aws.call("iam", "get_role_policy", RoleName=role,
                               PolicyName=policy_name("fraud-scoring-prod")))["PolicyDocument"]
    except PermanentActuationError:
        return None


async def test_a_partly_applied_isolation_is_counted_recorded_paged_and_undone(aws: AwsSession, tmp_path: Path):
    """`[inference-gateway, ghost-role]`: the first is denied, the step fails, 1 run stays counted, undo releases it."""
    [case] = [c for c in CASES if c.actuator == "aws.sagemaker.isolate_endpoint"]
    await case.setup(aws)  # the endpoint and the inference-gateway role; ghost-role does not exist
    reg = Registry()
    for name in ("aws.sagemaker.isolate_endpoint", "aws.sagemaker.release_endpoint"):
        reg.add(registry.get(name))
    pager = Echo()
    reg.add(pager)
    (tmp_path / "rb").mkdir()
    (tmp_path / "rb" / "isolate-endpoint.yaml").write_text(RUNBOOK)
    engine = Engine(Recorder(MemoryStore()), reg, aws)
    pipeline = Pipeline(load_runbooks(tmp_path / "rb", reg), engine)
    await pipeline.handle(RawRecord(topic="t", value=envelope_bytes(guardduty_finding("AKIAPARTIALPARTIAL01"))))
    await engine.recorder.flush()

    [result] = [e for e in engine.recorder.entries() if e.kind == "step.result" and e.body["step"] == "isolate"]
    assert result.body["status"] == "failed"
    assert result.body["changed"] is True
    assert result.body["prior"] == {"roles_without_deny": ["inference-gateway", "ghost-role"]}  # read before
    assert await _deny(aws, "inference-gateway") is not None  # the partial change is real
    assert engine.state.windows.count("isolate-endpoint", "aws.sagemaker.*", 1e12, 1e12) == 1  # not refunded
    [page] = pager.applied
    assert "partly done before it failed: put the invoke deny of fraud-scoring-prod on role inference-gateway" \
        in page.message

    outcomes = await Undoer(engine.recorder, reg, aws).undo(str(result.incident))
    assert [(o["status"], o.get("reverse")) for o in outcomes if o["step"] == "isolate"] == [
        ("ok", "aws.sagemaker.release_endpoint")]
    assert await _deny(aws, "inference-gateway") is None
