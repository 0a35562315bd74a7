"""A finding sent to a partition added to the alerts topic while the service runs is acted on exactly once, whatever
the consumer: a single instance's manual assignment (widened), a fleet member in its group (rejoined) or with a
manual assignment; in a fleet the changelog is grown to hold the new partition first. A key whose later findings
move to the added partition joins its open incident there (one replica owning both). On Apache Kafka: Tansu has no
CreatePartitions, so with no Java (Tansu in its place) they are skipped, saying so (docs/fleet.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from responder.ingest.changelog import Changelog, ensure_changelog
from responder.ingest.kafka import KafkaIngest, ensure_topics
from responder.sandbox.fixtures import on_apache_kafka
from responder.service import Service
from responder.settings import Settings
from tests.findings import envelope_bytes, guardduty_finding
from tests.integration.harness import CountingAws, grow_partitions, make_settings, running, send_to_partition, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.apache_kafka, pytest.mark.usefixtures("growable")]
kafka_bootstrap = on_apache_kafka()

MODES = {  # the settings that choose the alert consumer's kind
    "manual assignment": {"kafka_manual_assignment": True},  # one instance, widened at a poll
    "fleet member": {"changelog_topic": True},  # a group (range assignor): the group rejoins
    "fleet member, manual assignment": {"changelog_topic": True, "kafka_manual_assignment": True},
}


@pytest.fixture(autouse=True)
def _quick_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    """The alert consumer looks for added partitions every half second, not every 30 s or 5 minutes."""
    monkeypatch.setattr(KafkaIngest, "metadata_max_age_ms", 500, raising=False)
    monkeypatch.setattr(KafkaIngest, "group_metadata_max_age_ms", 500, raising=False)


async def _partitions(bootstrap: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
        return len(described["partitions"])
    finally:
        await admin.close()


async def _seed(aws: Any, user: str) -> str:
    await aws.call("iam", "create_user", UserName=user)
    return str((await aws.call("iam", "create_access_key", UserName=user))["AccessKey"]["AccessKeyId"])


async def _one_partition(kafka_bootstrap: str, aws: Any, unique: str, tmp_path: Path, runbooks_dir: Path,
                         mode: str) -> tuple[dict[str, str], Settings]:
    """The topics (the alerts topic with one partition; in a fleet, the changelog too) and the settings of `mode`."""
    topics = {"alerts": f"alerts1-{unique}", "deadletter": f"dlq-{unique}"}
    await ensure_topics(kafka_bootstrap, list(topics.values()), partitions=1)
    extra: dict[str, Any] = dict(MODES[mode])
    if extra.get("changelog_topic"):
        extra["changelog_topic"] = f"changelog-{unique}"
        await ensure_changelog(kafka_bootstrap, extra["changelog_topic"], 1)
    return topics, make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", runbooks_dir,
                                 session_timeout_ms=3000, approvals_topic=f"dec-{unique}", **extra)


@pytest.mark.parametrize("mode", list(MODES))
async def test_a_finding_on_an_alert_partition_added_while_the_service_runs_is_acted_on_once(
        kafka_bootstrap, aws, unique, tmp_path: Path, runbooks_dir, mode):
    """A finding on an alert partition added while the service runs is read and acted on once."""
    topics, settings = await _one_partition(kafka_bootstrap, aws, unique, tmp_path, runbooks_dir, mode)
    first, added = await _seed(aws, "ml-first"), await _seed(aws, "ml-added")
    counting = CountingAws(aws)
    service = Service(settings, aws=counting)

    def deactivated() -> int:
        return sum(1 for r in service.engine.state.results() if r.step == "deactivate-key")

    async with running(service):
        await send_to_partition(kafka_bootstrap, topics["alerts"], 0,
                                envelope_bytes(guardduty_finding(first, "ml-first")), [])
        await wait_for(lambda: deactivated() == 1, timeout=60)
        await grow_partitions(kafka_bootstrap, topics["alerts"], 2)
        await send_to_partition(kafka_bootstrap, topics["alerts"], 1,
                                envelope_bytes(guardduty_finding(added, "ml-added")), [])
        await wait_for(lambda: deactivated() == 2, timeout=60)
        assert {tp.partition for tp in service.ingest.assigned()} == {0, 1}
    assert counting.counts.get("update_access_key") == 2
    if settings.changelog_topic:
        assert await _partitions(kafka_bootstrap, settings.changelog_topic) == 2


async def _incidents_in(bootstrap: str, topic: str, partition: int) -> list[str]:
    """The ids of the incidents the changelog's `partition` holds (as a restore reads it)."""
    log = Changelog(bootstrap, topic)
    await log.start()
    try:
        return [i.id for s in await log.read(partition) for i in s.incidents]
    finally:
        await log.stop()


@pytest.mark.parametrize("mode", list(MODES))
async def test_an_open_incident_whose_key_moves_to_an_added_partition_is_joined_not_acted_again(
        kafka_bootstrap, aws, unique, tmp_path: Path, runbooks_dir, mode):
    """A key whose finding moves to an added partition joins its open incident and is not acted on again."""
    topics, settings = await _one_partition(kafka_bootstrap, aws, unique, tmp_path, runbooks_dir, mode)
    key = await _seed(aws, "ml-moved")
    counting = CountingAws(aws)
    service = Service(settings, aws=counting)

    def incidents() -> list[Any]:
        return [i for i in service.engine.state.incidents.all() if i.runbook == "iam-credential-compromise"]

    async with running(service):
        await send_to_partition(kafka_bootstrap, topics["alerts"], 0,
                                envelope_bytes(guardduty_finding(key, "ml-moved", finding_id="moved-1")), [])
        await wait_for(lambda: any(r.step == "deactivate-key" for r in service.engine.state.results()), timeout=60)
        await grow_partitions(kafka_bootstrap, topics["alerts"], 2)
        await send_to_partition(kafka_bootstrap, topics["alerts"], 1,
                                envelope_bytes(guardduty_finding(key, "ml-moved", finding_id="moved-2")), [])
        await wait_for(lambda: [i.events for i in incidents()] == [2], timeout=60)
        [incident] = incidents()
    assert counting.counts.get("update_access_key") == 1
    if settings.changelog_topic:
        assert await _incidents_in(kafka_bootstrap, settings.changelog_topic, 0) == []
        assert incident.id in await _incidents_in(kafka_bootstrap, settings.changelog_topic, 1)
