"""No secret from the settings reaches the logs or the timeline, even at debug level and on every refusal path."""

from __future__ import annotations

from pydantic import SecretStr

from responder import log
from responder.auth import signed_headers
from responder.ingest.approvals import send_decision
from responder.ingest.kafka import publish
from responder.service import Service
from tests.findings import envelope_bytes, guardduty_finding
from tests.integration.approval_kit import SECRET, approval_of, approval_setup, timeline_kinds
from tests.integration.harness import running, wait_for
from tests.timeline_builders import PRIVATE

EVENT_SECRET = "event-signing-secret-7d1f"
AWS_SECRET = "aws-secret-access-key-93be"


async def test_secrets_never_reach_logs_or_timeline(kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir,
                                                    capfd):
    """Approval, event-signing, AWS and timeline-signing secrets appear in no log line and no timeline entry."""
    names, key, settings = await approval_setup(kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir)
    settings = settings.model_copy(update={
        "event_signing_keys": {"p1": SecretStr(EVENT_SECRET)}, "aws_secret_access_key": SecretStr(AWS_SECRET),
        "timeline_signing_key": SecretStr(PRIVATE), "timeline_checkpoint_every": 2})
    log.configure("json", "debug")
    service = Service(settings)
    async with running(service):
        finding = envelope_bytes(guardduty_finding(key))
        await publish(kafka_bootstrap, topics["alerts"], [finding], key=key.encode())
        forged = envelope_bytes(guardduty_finding(key, finding_id="forged"))
        await publish(kafka_bootstrap, topics["alerts"], [forged], key=key.encode(),
                      headers=signed_headers("p1", b"not-the-secret", forged))
        await wait_for(lambda: bool(service.engine.state.parked_steps()), timeout=60)
        [parked] = service.engine.state.parked_steps()
        decision = approval_of(parked)
        await send_decision(kafka_bootstrap, names["decisions"], decision, "k1", b"not-the-secret")
        await wait_for(lambda: "approval.rejected" in timeline_kinds(settings.timeline_path), timeout=60)
        await send_decision(kafka_bootstrap, names["decisions"], decision, "k1", SECRET.encode())
        await wait_for(lambda: bool(service.engine.state.results()), timeout=60)
    out, err = capfd.readouterr()
    written = out + err + settings.timeline_path.read_text(encoding="utf-8")
    assert "approval_decided" in written  # the logs were captured at all
    for secret in (SECRET, EVENT_SECRET, AWS_SECRET, PRIVATE.strip()):
        assert secret not in written, f"a secret leaked: {secret[:8]}…"
