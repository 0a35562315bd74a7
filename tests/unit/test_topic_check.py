"""The topics a service writes to are checked before it consumes: which ones, what is wrong, and the wait."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from responder.ingest import topics as topic_check
from responder.ingest.topics import Needed, TopicProblem, check_topics, needed_topics, problems_in
from responder.service import Service, running
from responder.settings import Settings

DLQ = Needed("dlq", "dead-letter topic", "RESPONDER_DEADLETTER_TOPIC")
CHANGELOG = Needed("cl", "changelog topic", "RESPONDER_CHANGELOG_TOPIC", compact=True, co_partitioned=True,
                   auto_create=False)


def _described(name: str, code: int, partitions: int = 3) -> dict[str, Any]:
    return {"topic": name, "error_code": code, "partitions": [{"partition": p} for p in range(partitions)]}


def test_the_topics_needed_are_those_written_to_and_the_alert_and_approvals_topics() -> None:
    """A service needs the topics it writes to, per mode, plus the alert and approvals topics it reads, once each."""
    plain = needed_topics(Settings(kafka_bootstrap="k:1", deadletter_topic="d", approval_requests_topic="r",
                                   topics=["a"], approvals_topic="p"))
    assert [(t.name, t.setting) for t in plain] == [("d", "RESPONDER_DEADLETTER_TOPIC"), (
        "r", "RESPONDER_APPROVAL_REQUESTS_TOPIC"), ("a", "RESPONDER_TOPICS"), ("p", "RESPONDER_APPROVALS_TOPIC")]
    fleet = needed_topics(Settings(kafka_bootstrap="k:1", deadletter_topic="d", approval_requests_topic="r",
                                   changelog_topic="c", timeline_mirror_topic="m", topics=["a", "b"],
                                   approvals_topic="r"))
    assert [(t.name, t.compact, t.auto_create) for t in fleet] == [
        ("c", True, False), ("d", False, True), ("r", False, True), ("m", False, True), ("a", False, True),
        ("b", False, True)]
    dry = needed_topics(Settings(kafka_bootstrap="k:1", changelog_topic="c", timeline_mirror_topic="m", dry_run=True,
                                 topics=["a"], approvals_topic="p"))
    assert [(t.name, t.access) for t in dry] == [("c", "WRITE"), ("a", "READ"), ("p", "READ")]
    [refused] = problems_in(dry[2:], [_described("p", 29)], None)
    assert refused.fix == "grant this principal DESCRIBE and READ on it"


def test_a_missing_topic_is_named_with_the_command_that_creates_it() -> None:
    """A topic the metadata leaves out, or answers unknown, is missing: the message names it, its setting and how."""
    [problem] = problems_in([DLQ], [], None)
    assert str(problem) == ("dead-letter topic 'dlq' (RESPONDER_DEADLETTER_TOPIC) is missing: create it: "
                            "kafka-topics.sh --create --topic dlq --partitions 3 --replication-factor 3")
    [changelog] = problems_in([DLQ, CHANGELOG], [_described("dlq", 0), _described("cl", 3)], 12)
    assert changelog.topic is CHANGELOG
    assert "--partitions 12 --replication-factor 3 --config cleanup.policy=compact" in changelog.fix


def test_a_topic_refused_by_an_acl_says_so_and_one_being_created_is_no_problem() -> None:
    """Topic authorisation failed (29) asks for the grant; leader not available (5) is a topic just created."""
    problems = problems_in([DLQ, CHANGELOG], [_described("dlq", 29), _described("cl", 5)], None)
    assert [(p.topic.name, p.error) for p in problems] == [("dlq", "not authorised")]
    assert "DESCRIBE and WRITE" in problems[0].fix
    assert problems_in([DLQ], [_described("dlq", 0)], None) == []


class _Metadata:
    """An admin client whose metadata answers 3 (unknown) for an auto-created topic `unknown_for` times first."""

    def __init__(self, unknown_for: int) -> None:
        self.unknown_for, self.asked = unknown_for, 0

    async def _send_request(self, request: Any) -> Any:
        names, auto = request._topics, request._allow_auto_topic_creation
        self.asked += 1
        code = 3 if not auto or self.asked <= self.unknown_for else 0
        topics = [_described(name, code) for name in names]
        return type("Response", (), {"to_object": lambda _: {"topics": topics}})()


async def test_a_topic_the_broker_is_auto_creating_is_no_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    """Apache Kafka (KRaft) answers "unknown" to the request that auto-creates a topic: asked again, it is there."""
    admin = _Metadata(unknown_for=1)

    async def with_admin(bootstrap: str, call: Any, **_: Any) -> Any:
        return await call(admin)

    monkeypatch.setattr(topic_check, "with_admin", with_admin)
    assert await check_topics("k:1", [DLQ, CHANGELOG], []) == [TopicProblem(CHANGELOG, "missing", (
        "create it: kafka-topics.sh --create --topic cl --partitions N --replication-factor 3 "
        "--config cleanup.policy=compact --config min.insync.replicas=2 (as many partitions as the alert topics)"))]
    never = _Metadata(unknown_for=10**6)  # auto-creation off: still missing, after a bounded wait
    monkeypatch.setattr(topic_check, "AUTO_CREATE_WAIT_S", 0.3)
    monkeypatch.setattr(topic_check, "with_admin", lambda b, call, **_: call(never))
    assert [(p.topic.name, p.error) for p in await check_topics("k:1", [DLQ], [])] == [("dlq", "missing")]


def _settings(tmp_path: Path) -> Settings:
    return Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", runbooks_dir=tmp_path,
                    topics=["a"], deadletter_topic="dlq")


class _Topics:
    """check_topics for the service: every needed topic missing until `created` is set."""

    def __init__(self) -> None:
        self.created = asyncio.Event()
        self.checks = 0

    async def __call__(self, bootstrap: str, needed: list[Needed], alerts: list[str], **_: Any) -> list[TopicProblem]:
        self.checks += 1
        return [] if self.created.is_set() else problems_in([t for t in needed if t.name == "dlq"], [], None)

    async def checked(self, times: int) -> None:
        async with asyncio.timeout(10):
            while self.checks < times:
                await asyncio.sleep(0.005)


async def _reachable(*_: Any, **__: Any) -> None:
    return None


@pytest.fixture(name="topics")
def _topics(monkeypatch: pytest.MonkeyPatch) -> _Topics:
    topics = _Topics()
    monkeypatch.setattr(running, "check_connection", _reachable)
    monkeypatch.setattr(running, "check_topics", topics)
    return topics


async def test_a_missing_deadletter_topic_holds_the_service_until_it_is_created(tmp_path: Path,
                                                                                topics: _Topics) -> None:
    """No client starts while the dead-letter topic is missing; /readyz and one log line say so; created, it goes on."""
    service = Service(_settings(tmp_path), runbooks=[])
    service.topic_retry_s = 0.01
    started: list[float] = []

    async def start(wait: float, **_: Any) -> None:  # it is told what sets its wait
        started.append(wait)
        raise RuntimeError("consuming")  # far enough: the clients would start here

    service.publisher.start = start  # type: ignore[method-assign]
    with capture_logs() as logs:
        run = asyncio.create_task(service.run())
        await topics.checked(3)
        assert started == []
        assert not service.ready_now()
        assert "dead-letter topic 'dlq' (RESPONDER_DEADLETTER_TOPIC) is missing: create it" in (service.unready() or "")
        topics.created.set()
        with pytest.RaisesGroup(pytest.RaisesExc(RuntimeError, match="consuming")):  # from the shippers' group
            await run
    assert service.topics_missing is None
    assert len(started) == 1
    [missing] = [e for e in logs if e["event"] == "kafka_topics_missing"]  # once, not at every check
    assert missing["topics"] == ["dlq"]
    assert missing["log_level"] == "error"
    assert [e["topics"] for e in logs if e["event"] == "kafka_topics_ready"] == [["dlq"]]


async def test_a_stop_while_waiting_for_a_topic_ends_the_service_cleanly(tmp_path: Path, topics: _Topics) -> None:
    """SIGTERM while waiting for a missing topic stops cleanly: no client started, none open, `service_stopped`."""
    service = Service(_settings(tmp_path), runbooks=[])
    service.topic_retry_s = 60.0
    with capture_logs() as logs:
        run = asyncio.create_task(service.run())
        await topics.checked(1)
        service.request_stop()
        await run
    assert [e["log_level"] for e in logs if e["event"] == "service_stopped"] == ["info"]
    assert topics.checks == 1
    assert service.ingest.consumer._closed
    assert service.publisher.producer._closed


async def test_a_stop_asked_during_a_check_that_passes_starts_no_client(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM while the topics are being checked (seconds, when one is being created) is heeded: nothing starts."""
    service = Service(_settings(tmp_path), runbooks=[])

    async def check(*_: Any, **__: Any) -> list[TopicProblem]:
        service.request_stop()
        return []

    async def start(wait: float, **_: Any) -> None:
        raise RuntimeError("a client started")

    monkeypatch.setattr(running, "check_connection", _reachable)
    monkeypatch.setattr(running, "check_topics", check)
    service.publisher.start = start  # type: ignore[method-assign]
    await service.run()
    assert service.topics_missing is None


async def test_the_auto_create_wait_fits_within_a_short_check_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a check deadline under the 3 s auto-create wait, an unknown topic is reported missing, not unreachable."""
    import aiokafka.admin

    class _Admin(_Metadata):
        def __init__(self, **_: Any) -> None:
            super().__init__(unknown_for=10**6)

        async def start(self) -> None:
            pass

        async def close(self) -> None:
            pass

    monkeypatch.setattr(aiokafka.admin, "AIOKafkaAdminClient", _Admin)
    assert [(p.topic.name, p.error) for p in await check_topics("k:1", [DLQ], [], deadline=0.4)] == [
        ("dlq", "missing")]
