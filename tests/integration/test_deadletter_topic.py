"""A dead-letter topic missing on a broker without auto-creation: found at start, said, waited for, then used."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from responder.ingest.admin import with_admin
from responder.ingest.kafka import ensure_topics, publish
from responder.ingest.reading import read_to_end
from responder.ingest.topics import check_topics, needed_topics
from responder.sandbox.fixtures import apache_available
from responder.sandbox.kafka_jvm import KafkaCluster
from responder.service import Service
from responder.settings import Settings
from tests.http import http_request
from tests.integration.harness import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", name="strict_kafka")
def _strict_kafka() -> Iterator[str]:
    """One Apache Kafka node with `auto.create.topics.enable=false`, as production clusters usually run (Tansu
    always creates a topic a producer asks about, so it cannot stand for them)."""
    if not apache_available():
        pytest.skip("a broker without topic auto-creation needs Java 17+ and Maven (or cached jars)")
    with KafkaCluster(1, config={"auto.create.topics.enable": "false"}) as cluster:
        yield cluster.bootstrap()


async def _topics(bootstrap: str) -> set[str]:
    return set(await with_admin(bootstrap, lambda admin: admin.list_topics()))


async def test_a_missing_deadletter_topic_is_waited_for_then_used(strict_kafka: str, unique: str, tmp_path: Path,
                                                                  runbooks_dir: Path) -> None:
    """A missing dead-letter topic holds consumption, named in /readyz; once created the poison record goes to it."""
    alerts, dlq, requests, decisions = (f"{t}-{unique}" for t in ("alerts", "dlq", "requests", "decisions"))
    await ensure_topics(strict_kafka, [alerts, requests, decisions], partitions=1)
    await publish(strict_kafka, alerts, [b"{not json"])
    settings = Settings(kafka_bootstrap=strict_kafka, topics=[alerts], deadletter_topic=dlq,
                        approval_requests_topic=requests, approvals_topic=decisions, group_id=f"g-{unique}",
                        session_timeout_ms=6000,
                        timeline_path=tmp_path / "t.jsonl", runbooks_dir=runbooks_dir, metrics_host="127.0.0.1",
                        metrics_port=0)
    service = Service(settings)
    service.topic_retry_s = 0.2
    task = asyncio.create_task(service.run())
    try:
        await wait_for(lambda: service.topics_missing is not None, 60)
        assert service.metrics_server is not None
        status, body = await http_request(service.metrics_server.port, "/readyz")
        assert status == 503
        assert f"dead-letter topic '{dlq}' (RESPONDER_DEADLETTER_TOPIC) is missing" in body
        assert f"kafka-topics.sh --create --topic {dlq}" in body
        assert requests not in body  # it exists: only what is missing is named
        await asyncio.sleep(0.5)  # a few more checks
        assert not service.ready.is_set()
        assert service.deadlettered == {}
        assert dlq not in await _topics(strict_kafka)  # still not there: the checks created nothing
        await ensure_topics(strict_kafka, [dlq], partitions=1)
        await wait_for(lambda: service.deadlettered.get("not_json") == 1, 60)
        assert service.topics_missing is None
        [dead] = await read_to_end(strict_kafka, dlq)
        assert dead.header("dlq.topic") == alerts.encode()
        assert dead.header("dlq.offset") == b"0"
    finally:
        service.request_stop()
        await asyncio.wait_for(task, 60)


async def test_the_check_lets_auto_creation_make_the_deadletter_topic_never_the_changelog(
        apache_kafka_bootstrap: str, unique: str) -> None:
    """The topic check lets auto-creation make the dead-letter and requests topics but reports the changelog missing."""
    bootstrap = apache_kafka_bootstrap
    alerts, dlq, requests, changelog = (f"{t}-{unique}" for t in ("alerts", "dlq", "requests", "changelog"))
    await ensure_topics(bootstrap, [alerts], partitions=2)
    settings = Settings(kafka_bootstrap=bootstrap, topics=[alerts], deadletter_topic=dlq,
                        approval_requests_topic=requests, changelog_topic=changelog)
    problems = await check_topics(bootstrap, needed_topics(settings), [alerts])
    assert [(p.topic.name, p.error) for p in problems] == [(changelog, "missing")]
    assert f"--topic {changelog} --partitions 2 " in problems[0].fix
    topics = await _topics(bootstrap)
    assert {dlq, requests} <= topics
    assert changelog not in topics


async def test_a_missing_approvals_or_alert_topic_is_named_not_a_bare_unknown_topic_error(strict_kafka: str,
                                                                                          unique: str) -> None:
    """A missing approvals or alert topic is named with its setting, not a bare UnknownTopicOrPartitionError."""
    alerts, dlq, requests, decisions = (f"{t}-{unique}" for t in ("alerts", "dlq", "requests", "decisions"))
    await ensure_topics(strict_kafka, [dlq, requests], partitions=1)
    settings = Settings(kafka_bootstrap=strict_kafka, topics=[alerts], deadletter_topic=dlq,
                        approval_requests_topic=requests, approvals_topic=decisions)
    problems = await check_topics(strict_kafka, needed_topics(settings), [alerts])
    assert [str(p).split(" is ")[0] for p in problems] == [f"alert topic '{alerts}' (RESPONDER_TOPICS)",
                                                          f"approvals topic '{decisions}' (RESPONDER_APPROVALS_TOPIC)"]
    await ensure_topics(strict_kafka, [alerts, decisions], partitions=1)
    assert await check_topics(strict_kafka, needed_topics(settings), [alerts]) == []


NOTIFYING = """\
id: notifying
trigger: {{source: guardduty}}
steps:
  - id: tell
    actuator: notify.kafka.publish_message
    with: {{topic: {topic}, title: "finding ${{event.type}}"}}
"""


async def test_a_missing_notification_topic_is_a_warning_and_the_service_consumes(strict_kafka: str, unique: str,
                                                                                   tmp_path: Path) -> None:
    """A missing notification topic is a warning naming its create command; the service gets ready and consumes."""
    alerts, dlq, requests, decisions, notes = (f"{t}-{unique}" for t in ("alerts", "dlq", "requests", "decisions",
                                                                         "notes"))
    await ensure_topics(strict_kafka, [alerts, dlq, requests, decisions], partitions=1)
    books = tmp_path / "runbooks"
    books.mkdir()
    (books / "notifying.yaml").write_text(NOTIFYING.format(topic=notes))
    settings = Settings(kafka_bootstrap=strict_kafka, topics=[alerts], deadletter_topic=dlq,
                        approval_requests_topic=requests, approvals_topic=decisions, group_id=f"g-{unique}",
                        session_timeout_ms=6000, timeline_path=tmp_path / "t.jsonl", runbooks_dir=books,
                        metrics_host="127.0.0.1", metrics_port=0)
    service = Service(settings)
    task = asyncio.create_task(service.run())
    try:
        await wait_for(service.ready.is_set, 60)
        assert service.metrics_server is not None
        status, body = await http_request(service.metrics_server.port, "/readyz")
        assert status == 200
        assert body.startswith("ready\nwarning: ")
        assert f"notification topic '{notes}' (runbook notifying, step tell) is missing" in body
        assert f"kafka-topics.sh --create --topic {notes}" in body
        assert notes not in await _topics(strict_kafka)
    finally:
        service.request_stop()
        await asyncio.wait_for(task, 60)
