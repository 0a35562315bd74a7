"""A flood of forged decisions through the real broker: bounded entries and fsyncs, counted, summed up at stop, and a
genuine decision after it still runs its step."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from responder.auth import signed_headers
from responder.engine.refusals import FULL_PER_WINDOW
from responder.ingest.approvals import send_decision
from responder.ingest.kafka import ensure_topics, publish
from responder.models.operator import OperatorRequest
from responder.service import Service
from responder.timeline.chain import parse_lines, verify_entries
from tests.integration.approval_kit import SECRET, approval_of, approval_setup, park
from tests.integration.harness import key_status, make_settings, running, wait_for

pytestmark = pytest.mark.integration
FLOOD = 2_000  # per forgery: unsigned, and signed with a wrong secret under the real key id


async def test_forged_decisions_flood_costs_bounded_entries_and_the_genuine_decision_acts(
    kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir
):
    """4,000 forged decisions add at most FULL_PER_WINDOW entries per kind, all counted; the signed decision runs."""
    names, key, settings = await approval_setup(kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir)
    service = Service(settings)
    async with running(service):
        parked = await park(service, kafka_bootstrap, topics, key)
        genuine = approval_of(parked)
        value = genuine.canonical()
        syncs, seq = service.recorder.syncs, service.recorder.next_seq
        await publish(kafka_bootstrap, names["decisions"], [value] * FLOOD, key=parked.incident.encode())
        await publish(kafka_bootstrap, names["decisions"], [value] * FLOOD, key=parked.incident.encode(),
                      headers=[("responder-key-id", b"k1"), ("responder-signature", b"0" * 64)])
        await send_decision(kafka_bootstrap, names["decisions"], genuine, "k1", SECRET.encode())
        await wait_for(lambda: bool(service.engine.state.results()), timeout=60)
        refused = service.metrics.value("responder_decisions_refused_total", reason="unsigned") + \
            service.metrics.value("responder_decisions_refused_total", reason="bad_signature")
        assert refused == 2 * FLOOD
        added = service.recorder.next_seq - seq
        assert service.recorder.syncs - syncs <= added < 2 * FULL_PER_WINDOW + 10  # the step's own entries too
    assert await key_status(aws, key) == "Inactive"
    entries = list(parse_lines(settings.timeline_path.read_bytes().splitlines()))
    verify_entries(entries)
    rejected = [e.body for e in entries if e.kind == "approval.rejected"]
    full = [b for b in rejected if "suppressed" not in b]
    summaries = {b["class"]: b["suppressed"] for b in rejected if "suppressed" in b}
    assert len(full) == 2 * FULL_PER_WINDOW
    assert summaries == {"unsigned": FLOOD - FULL_PER_WINDOW, "bad_signature": FLOOD - FULL_PER_WINDOW}
    assert [e.body["by"] for e in entries if e.kind == "approval.decided"] == ["alice"]


async def test_requests_a_valid_key_is_not_granted_cost_bounded_entries(kafka_bootstrap, aws, topics, unique,
                                                                        tmp_path, runbooks_dir):
    """50 operator requests signed by a key not granted undo are counted, FULL_PER_WINDOW kept in full; none run."""
    ops = {"operator_requests_topic": f"opreq-{unique}", "operator_replies_topic": f"oprep-{unique}"}
    await ensure_topics(kafka_bootstrap, list(ops.values()), partitions=1)
    settings = make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", runbooks_dir,
                             approval_keys={"ops": "s1", "viewer": "s2"}, operator_permissions={"ops": ["undo"]},
                             **ops)
    now, flood = datetime.now(UTC), 50
    service = Service(settings)
    async with running(service):
        for _ in range(flood):
            value = OperatorRequest(id=uuid.uuid4().hex, action="undo", by="mallory", incident="inc-1",
                                    issued_at=now, expires_at=now + timedelta(minutes=5)).canonical()
            await publish(kafka_bootstrap, ops["operator_requests_topic"], [value], key=b"inc-1",
                          headers=signed_headers("viewer", b"s2", value))
        await wait_for(lambda: service.metrics.value("responder_decisions_refused_total", reason="refused") == flood,
                       timeout=60)
    entries = list(parse_lines(settings.timeline_path.read_bytes().splitlines()))
    verify_entries(entries)
    refused = [e.body for e in entries if e.kind == "operator.refused"]
    assert len(refused) == FULL_PER_WINDOW + 1
    assert "may not send undo" in str(refused[0]["reason"])
    assert (refused[-1]["suppressed"], refused[-1]["key_id"]) == (flood - FULL_PER_WINDOW, "viewer")
    assert not [e for e in entries if e.kind in ("operator.requested", "operator.completed")]
