"""A fleet replica on the broker: an approved step whose read-back lags (IAM on moto, read stale once) settles with
the batch gate let down to its shared side, so another partition's finding is handled meanwhile; its result is
recorded once, in order, and reaches the changelog."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner

from responder.ingest.approvals import send_decision
from responder.ingest.changelog import Changelog, ensure_changelog
from responder.ingest.kafka import ensure_topics, publish
from responder.service import Service
from responder.timeline.chain import parse_lines
from tests.fakes import Lagging
from tests.findings import envelope_bytes, guardduty_finding
from tests.fleet_kit import Held
from tests.integration.approval_kit import SECRET, approval_of, approval_runbooks
from tests.integration.harness import access_key, key_status, make_settings, running, wait_for

pytestmark = pytest.mark.integration
PARTITIONS = 3


def _keys_apart() -> tuple[bytes, bytes]:
    """Two record keys on different alert partitions (Kafka's default partitioner)."""
    first = b"settle-a"
    part = DefaultPartitioner()(first, list(range(PARTITIONS)), [])
    other = next(k for n in range(100) if DefaultPartitioner()(k := f"settle-b{n}".encode(),
                                                               list(range(PARTITIONS)), []) != part)
    return first, other


async def _fleet(kafka_bootstrap: str, aws: Any, topics: dict[str, str], unique: str, tmp_path: Path,
                 runbooks_dir: Path) -> tuple[Service, Held, str]:
    """A fleet replica (changelog of 3 partitions) whose steps need a human's approval, whose IAM reads lag a
    deactivation once, and whose settle waits until the test lets it go; returns it, the settle and the changelog."""
    changelog, decisions = f"changelog-{unique}", f"dec-{unique}"
    await ensure_topics(kafka_bootstrap, [decisions, f"req-{unique}"], partitions=1)
    await ensure_changelog(kafka_bootstrap, changelog, PARTITIONS)
    settings = make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl",
                             approval_runbooks(tmp_path, runbooks_dir), changelog_topic=changelog,
                             approvals_topic=decisions, approval_requests_topic=f"req-{unique}",
                             approval_keys={"k1": SECRET}, approver_identities={"k1": "alice"})
    service, held = Service(settings, aws=Lagging(aws.call, stale=1)), Held()
    service.engine.verify_settle = held.settle()
    return service, held, changelog


async def _approve(bootstrap: str, service: Service, key: str) -> str:
    """Sign and send the approval of the step parked for `key`; returns its incident."""
    [parked] = [p for p in service.engine.state.parked_steps() if p.target == key]
    decision = approval_of(parked, valid=timedelta(minutes=10))
    await send_decision(bootstrap, service.settings.approvals_topic, decision, "k1", SECRET.encode())
    return parked.incident


def _parked(service: Service, key: str) -> bool:
    return any(p.target == key for p in service.engine.state.parked_steps())


async def _done_in_changelog(bootstrap: str, topic: str, key: str) -> list[dict[str, Any]]:
    """The results of `key`'s deactivation in the changelog, read back as a next owner reads it."""
    reader = Changelog(bootstrap, topic)
    await reader.start()
    try:
        slices = [s for p in range(PARTITIONS) for s in await reader.read(p)]
    finally:
        await reader.stop()
    return [d.result.body() for s in slices for d in s.done.values() if d.result.target == key]


@pytest.mark.timeout(300)
async def test_an_approved_step_settling_in_a_fleet_lets_another_partitions_finding_through(
    kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir
):
    """An approved step settling in a fleet lets another partition's finding through, then is recorded once."""
    first, second = await access_key(aws, "ml-first"), await access_key(aws, "ml-second")
    record_a, record_b = _keys_apart()
    service, held, changelog = await _fleet(kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir)
    async with running(service):
        await publish(kafka_bootstrap, topics["alerts"], [envelope_bytes(guardduty_finding(first, "ml-first"))],
                      key=record_a)
        await wait_for(lambda: _parked(service, first), timeout=60)
        incident = await _approve(kafka_bootstrap, service, first)
        await wait_for(held.waiting.is_set, timeout=60)  # the approved step applied, read stale: it settles
        try:
            await publish(kafka_bootstrap, topics["alerts"],
                          [envelope_bytes(guardduty_finding(second, "ml-second"))], key=record_b)
            await wait_for(lambda: _parked(service, second), timeout=30)  # handled by its lane meanwhile
            assert service.engine.state.result(_key(service, incident)) is None  # still settling
        finally:
            held.go.set()  # the settle ends (reads true), whatever happened
        await wait_for(lambda: "approval.settled" in _kinds(service, incident), timeout=60)
    assert (await key_status(aws, first, "ml-first"),
            await key_status(aws, second, "ml-second")) == ("Inactive", "Active")
    entries = [e for e in _entries(service) if e.incident == incident]
    [result] = [e.body for e in entries if e.kind == "step.result" and e.body["step"] == "deactivate-key"]
    assert (result["status"], result["verified"], result["verify_reads"]) == ("ok", True, 2)
    kinds = [e.kind for e in entries]
    assert kinds.index("approval.decided") < kinds.index("step.intent") < kinds.index("step.result") \
        < kinds.index("approval.settled")
    assert [(r["status"], r["verified"]) for r in await _done_in_changelog(kafka_bootstrap, changelog, first)] \
        == [("ok", True)]


def _entries(service: Service) -> list[Any]:
    return list(parse_lines(Path(service.settings.timeline_path).read_bytes().splitlines()))


def _kinds(service: Service, incident: str) -> list[str]:
    return [e.kind for e in _entries(service) if e.incident == incident]


def _key(service: Service, incident: str) -> str:
    """The idempotency key of the incident's deactivation (its intent's)."""
    [intent] = [e.body for e in _entries(service) if e.incident == incident and e.kind == "step.intent"]
    return str(intent["key"])
