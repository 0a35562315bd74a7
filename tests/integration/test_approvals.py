"""Approvals through the real broker and moto: park, restart, approve by CLI, refuse forgeries."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from responder.errors import BrokerUnavailable
from responder.ingest.approvals import send_decision
from responder.ingest.kafka import publish
from responder.models.approval import ApprovalDecision
from responder.service import Service
from responder.timeline.chain import parse_lines, verify_entries
from tests.findings import envelope_bytes, guardduty_finding
from tests.integration.approval_kit import approval_setup, decide_by_cli, run_until_parked, timeline_kinds
from tests.integration.harness import key_status, running, wait_for

pytestmark = pytest.mark.integration



async def test_parked_step_survives_restart_and_cli_approval_runs_it(
    kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir
):
    """A parked step survives a restart, and `responder approve` runs it with a decision naming its request id."""
    names, key, settings = await approval_setup(kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir)
    first, incident, step = await run_until_parked(kafka_bootstrap, topics, key, settings)
    assert await key_status(aws, key) == "Active"
    request = await _first_request(kafka_bootstrap, names["requests"], unique)
    assert (request["incident"], request["step"], request["target"]) == (incident, step, key)
    assert request["request_id"] == first.engine.state.parked(incident, step).request_id

    second = Service(settings)
    async with running(second):
        assert second.engine.state.parked(incident, step) is not None
        await decide_by_cli("approve", kafka_bootstrap, names, settings, incident, step, "confirmed")
        await wait_for(lambda: bool(second.engine.state.results()), timeout=60)
    assert await key_status(aws, key) == "Inactive"
    kinds = timeline_kinds(settings.timeline_path)
    assert kinds.index("approval.requested") < kinds.index("approval.decided") < kinds.index("step.intent")
    entries = parse_lines(settings.timeline_path.read_bytes().splitlines())
    [decided] = [e.body for e in entries if e.kind == "approval.decided"]
    assert decided["request_id"] == request["request_id"]  # the decision `approve` sent named the request
    verify_entries(entries)


async def _first_request(kafka_bootstrap: str, topic: str, unique: str) -> dict[str, object]:
    """The first record of the requests topic, read from its start (within 20 s)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
                                group_id=f"req-{unique}")
    await consumer.start()
    try:
        return orjson.loads((await asyncio.wait_for(consumer.getone(), 20)).value)  # type: ignore[no-any-return]
    finally:
        await consumer.stop()


async def test_a_request_kafka_did_not_take_before_a_restart_is_published_by_the_next_process(
    kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir, monkeypatch
):
    """A request Kafka did not take before a stop is published by the next process under its id, before timeout."""
    names, key, settings = await approval_setup(kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir)
    first = Service(settings)

    async def refused(*_: object, **__: object) -> None:
        raise BrokerUnavailable("Kafka did not acknowledge a record within 20s")

    monkeypatch.setattr(first.publisher, "publish", refused)
    async with running(first):
        await publish(kafka_bootstrap, topics["alerts"], [envelope_bytes(guardduty_finding(key))], key=key.encode())
        await wait_for(lambda: bool(first.engine.state.parked_steps()))
    [parked] = first.engine.state.parked_steps()
    assert first.engine.decisions.unsent == {(parked.incident, parked.step): parked.request_id}
    async with running(Service(settings)):
        request = await _first_request(kafka_bootstrap, names["requests"], unique)
    assert (request["incident"], request["step"], request["request_id"]) == (parked.incident, parked.step,
                                                                              parked.request_id)
    assert await key_status(aws, key) == "Active"  # still waiting for a human


async def test_forged_decision_on_kafka_is_refused(kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir):
    """A decision signed with the wrong secret is recorded as rejected and the key stays Active."""
    names, key, settings = await approval_setup(kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir)
    service = Service(settings)
    async with running(service):
        await publish(kafka_bootstrap, topics["alerts"], [envelope_bytes(guardduty_finding(key))], key=key.encode())
        await wait_for(lambda: bool(service.engine.state.parked_steps()))
        [(incident, step)] = [(p.incident, p.step) for p in service.engine.state.parked_steps()]
        parked = service.engine.state.parked(incident, step)
        now = datetime.now(UTC)
        forged = ApprovalDecision(incident=incident, step=step, decision="approve", by="alice", digest=parked.digest,
                                  issued_at=now, expires_at=now + timedelta(minutes=5), request_id=parked.request_id)
        await send_decision(kafka_bootstrap, names["decisions"], forged, "k1", b"not-the-secret")
        await wait_for(lambda: "approval.rejected" in timeline_kinds(settings.timeline_path), timeout=60)
    assert await key_status(aws, key) == "Active"
    assert service.engine.state.parked(incident, step) is not None


async def test_kill_switch_turns_the_step_into_a_published_request(
    kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir
):
    """With the kill switch on, the shipped runbook's step is not run: guard.tripped, a request on Kafka."""
    names, key, settings = await approval_setup(kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir)
    settings = settings.model_copy(update={"kill_switch": True, "runbooks_dir": runbooks_dir})
    service = Service(settings)
    async with running(service):
        await publish(kafka_bootstrap, topics["alerts"], [envelope_bytes(guardduty_finding(key))], key=key.encode())
        await wait_for(lambda: bool(service.engine.state.parked_steps()))
    request = await _first_request(kafka_bootstrap, names["requests"], unique)
    assert request["reasons"][0].startswith("kill_switch")
    assert await key_status(aws, key) == "Active"
    kinds = timeline_kinds(settings.timeline_path)
    assert kinds.index("guard.tripped") < kinds.index("approval.requested")
    assert "step.intent" not in kinds
