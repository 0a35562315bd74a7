"""Decisions and operator requests on a partition added to their topic while the service runs are read, whatever
the consumer: a fleet member's (no group, every partition), a single instance's manual assignment, a group's.
On Apache Kafka: Tansu has no CreatePartitions, so with no Java (Tansu in its place) they are skipped, saying so
(docs/fleet.md, "Partitions added to a running fleet's topics")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from responder.auth import signed_headers
from responder.ingest.approvals import ApprovalIngest
from responder.ingest.changelog import ensure_changelog
from responder.ingest.kafka import ensure_topics, publish
from responder.sandbox.fixtures import on_apache_kafka
from responder.service import Service
from responder.timeline.chain import parse_lines
from tests.integration.approval_kit import SECRET, approval_of, approval_runbooks, park
from tests.integration.harness import grow_partitions, key_status, make_settings, running, send_to_partition, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.apache_kafka, pytest.mark.usefixtures("growable")]
kafka_bootstrap = on_apache_kafka()

MODES = {  # the settings that choose the signed-record consumers' kind
    "fleet member": {"changelog_topic": "changelog"},  # no group, every partition assigned by the service
    "manual assignment": {"kafka_manual_assignment": True},  # one instance, every partition, offsets in a group
    "consumer group": {},  # subscribed: the group's assignment follows the topic
}


@pytest.fixture(autouse=True)
def _quick_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    """The signed-record consumers look for added partitions every half second, not every 30 s or 5 minutes."""
    monkeypatch.setattr(ApprovalIngest, "metadata_max_age_ms", 500, raising=False)
    monkeypatch.setattr(ApprovalIngest, "group_metadata_max_age_ms", 500, raising=False)


async def _settings(kafka_bootstrap: str, aws: Any, topics: dict[str, str], unique: str, tmp_path: Path,
                    runbooks_dir: Path, mode: str) -> Any:
    extra: dict[str, Any] = dict(MODES[mode])
    if "changelog_topic" in extra:
        extra["changelog_topic"] = f"changelog-{unique}"
        await ensure_changelog(kafka_bootstrap, extra["changelog_topic"], 3)
    return make_settings(
        kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", approval_runbooks(tmp_path, runbooks_dir),
        session_timeout_ms=3000, approvals_topic=f"dec-{unique}", approval_requests_topic=f"req-{unique}",
        operator_requests_topic=f"opreq-{unique}", operator_replies_topic=f"oprep-{unique}",
        approval_keys={"k1": SECRET}, approver_identities={"k1": "alice"}, **extra)


@pytest.mark.parametrize("mode", list(MODES))
async def test_a_decision_on_a_partition_added_while_the_service_runs_releases_its_step(
        kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir, mode):
    """A decision on a decisions partition added while the service runs releases its parked step."""
    settings = await _settings(kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir, mode)
    await ensure_topics(kafka_bootstrap, [settings.approvals_topic, settings.approval_requests_topic], partitions=1)
    await aws.call("iam", "create_user", UserName="ml-training")
    key = (await aws.call("iam", "create_access_key", UserName="ml-training"))["AccessKey"]["AccessKeyId"]
    service = Service(settings)

    def kinds() -> list[str]:
        return [e.kind for e in parse_lines(settings.timeline_path.read_bytes().splitlines())]

    async with running(service):
        parked = await park(service, kafka_bootstrap, topics, key)
        await publish(kafka_bootstrap, settings.approvals_topic, [b'{"forged": 1}'], key=b"inc")  # unsigned
        await wait_for(lambda: kinds().count("approval.rejected") == 1)
        await grow_partitions(kafka_bootstrap, settings.approvals_topic, 2)
        value = approval_of(parked).canonical()
        headers = signed_headers("k1", SECRET.encode(), value)
        await send_to_partition(kafka_bootstrap, settings.approvals_topic, 1, value, headers)
        await wait_for(lambda: bool(service.engine.state.results()), timeout=30)
    assert await key_status(aws, key) == "Inactive"
    assert kinds().count("approval.decided") == 1
    assert kinds().count("approval.rejected") == 1  # the first partition's forgery was not read a second time


@pytest.mark.parametrize("mode", list(MODES))
async def test_an_operator_request_on_a_partition_added_while_the_service_runs_is_read(
        kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir, mode):
    """An unsigned operator request on a requests partition added after the start is read and refused."""
    settings = await _settings(kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir, mode)
    await ensure_topics(kafka_bootstrap, [settings.operator_requests_topic, settings.operator_replies_topic],
                        partitions=1)
    service = Service(settings)
    async with running(service):
        await grow_partitions(kafka_bootstrap, settings.operator_requests_topic, 2)
        await send_to_partition(kafka_bootstrap, settings.operator_requests_topic, 1, b'{"unsigned": true}', [])

        def rejected() -> list[Any]:
            return [e for e in parse_lines(settings.timeline_path.read_bytes().splitlines())
                    if e.kind == "operator.rejected"]

        await wait_for(lambda: bool(rejected()), timeout=30)
    [entry] = rejected()
    assert entry.body["reason"].startswith("unsigned")
