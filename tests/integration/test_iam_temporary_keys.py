"""A finding naming a temporary (ASIA…) key: the key step fails at once, without an IAM call, and escalates."""

from __future__ import annotations

from pathlib import Path

import pytest

from responder.actuators import registry
from responder.actuators.aws.session import AwsSession
from responder.actuators.registry import Registry
from responder.catalog import load_runbooks
from responder.engine import Engine
from responder.models import RawRecord
from responder.pipeline import Pipeline
from responder.timeline import MemoryStore, Recorder
from tests.fakes import Echo
from tests.findings import envelope_bytes, guardduty_finding
from tests.integration.harness import CountingAws
from tests.kit import HEADER, deactivate_key_step

pytestmark = pytest.mark.integration

RUNBOOK = HEADER.format(id="contain-key") + "steps:\n" + deactivate_key_step(3) + """\
on_failure:
  - id: escalate
    actuator: test.echo
    with: {target: oncall, message: "containment failed: ${failure.step}: ${failure.error}"}
"""


async def test_a_temporary_key_fails_fast_and_reaches_a_human(aws: AwsSession, tmp_path: Path):
    """GuardDuty names an ASIA… key: the step fails permanently once, no IAM call is made, on-call is paged."""
    await aws.call("iam", "create_user", UserName="ml-training")
    (tmp_path / "rb").mkdir()
    (tmp_path / "rb" / "contain-key.yaml").write_text(RUNBOOK)
    reg = Registry()
    reg.add(registry.get("aws.iam.deactivate_access_key"))
    pager = Echo()
    reg.add(pager)
    counting = CountingAws(aws)
    engine = Engine(Recorder(MemoryStore()), reg, counting)
    pipeline = Pipeline(load_runbooks(tmp_path / "rb", reg), engine)
    await pipeline.handle(RawRecord(topic="t", value=envelope_bytes(guardduty_finding("ASIAQWERTYUIOPASDFGH"))))
    await engine.recorder.flush()
    entries = list(engine.recorder.entries())
    [failed] = [e.body for e in entries if e.kind == "step.result" and e.body["step"] == "deactivate-key"]
    assert failed["status"] == "failed"
    assert failed["permanent"] is True
    assert "temporary (STS) access key" in failed["error"]
    assert not [c for c in counting.calls if c.startswith("iam.")]
    assert not [e for e in entries if e.kind == "step.intent" and e.body["step"] == "deactivate-key"]
    [page] = pager.applied
    assert "aws.iam.revoke_sessions" in page.message
