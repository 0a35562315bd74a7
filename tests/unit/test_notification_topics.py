"""The topics runbooks' notify.kafka steps publish to are checked at start: a missing one is a warning, never a wait."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from responder.errors import ConfigError
from responder.ingest import topics
from responder.ingest.topics import Needed, TopicProblem, await_topics, needed_topics, notification_topics, problems_in
from responder.metrics import Metrics
from responder.metrics_server import MetricsServer
from responder.models.runbook import Mode, Runbook
from responder.service import Service, running
from responder.service.wiring import refuse_notifying_own_topics
from responder.settings import Settings

NOTIFY = "notify.kafka.publish_message"


def _book(rb_id: str, topic: str, escalation_topic: str | None = None) -> Runbook:
    steps = [{"id": "tell", "actuator": NOTIFY, "with": {"topic": topic, "title": "t"}}]
    escalation = ([{"id": "page", "actuator": NOTIFY, "with": {"topic": escalation_topic, "title": "f"}}]
                  if escalation_topic else [])
    return Runbook.model_validate({"id": rb_id, "trigger": {"source": "guardduty"}, "steps": steps,
                                   "on_failure": escalation})


def test_notification_topics_are_the_literal_topics_of_notify_kafka_steps() -> None:
    """Each topic of a notify.kafka step (steps and on_failure) once, naming the first runbook and step."""
    found = notification_topics([_book("a", "responder.notifications", "responder.escalations"),
                                 _book("b", "responder.notifications"), _book("c", "${event.attributes.topic}")])
    assert [(t.name, t.setting, t.warn_only) for t in found] == [
        ("responder.notifications", "runbook a, step tell", True),
        ("responder.escalations", "runbook a, step page", True)]


def test_a_notification_topic_comes_after_the_service_s_own_and_only_when_acting() -> None:
    """A topic that is also the service's own keeps the service's (blocking) check; a dry run publishes nothing."""
    settings = Settings(kafka_bootstrap="k:1", deadletter_topic="d", approval_requests_topic="r", topics=["a"],
                        approvals_topic="p")
    notify = notification_topics([_book("x", "n", "d")])
    assert [(t.name, t.warn_only) for t in needed_topics(settings, notify)] == [
        ("d", False), ("r", False), ("a", False), ("p", False), ("n", True)]
    dry = settings.model_copy(update={"dry_run": True})
    assert [t.name for t in needed_topics(dry, notify)] == ["a", "p"]


async def test_a_missing_notification_topic_warns_once_and_never_holds_the_start() -> None:
    """Only missing notification topics make the wait return at once with one warning giving the create command."""
    topic = Needed("responder.notifications", "notification topic", "runbook a, step tell", warn_only=True)
    problems = problems_in([topic], [], None)
    reasons: list[str | None] = []
    warnings: list[str | None] = []
    with capture_logs() as logs:
        assert await await_topics(_returning(problems), asyncio.Event(), reasons.append, warn=warnings.append)
    assert reasons == [None]
    assert warnings == ["notification topic 'responder.notifications' (runbook a, step tell) is missing: create it: "
                        "kafka-topics.sh --create --topic responder.notifications --partitions 3 "
                        "--replication-factor 3 (a notification to it fails unless the broker auto-creates it; "
                        "containment goes on)"]
    [said] = [e for e in logs if e["event"] == "kafka_notification_topics_missing"]
    assert said["log_level"] == "warning"
    assert said["topics"] == ["responder.notifications"]
    assert not [e for e in logs if e["event"] == "kafka_topics_missing"]


def _returning(problems: list[TopicProblem]) -> Any:
    async def check() -> list[TopicProblem]:
        return problems
    return check


def test_readyz_shows_a_warning_while_ready() -> None:
    """`/readyz` stays 200 with a warning line under `ready` when the service has one."""
    server = MetricsServer(Metrics(), lambda: True, why=lambda: None)
    assert server._route("GET", "/readyz") == (200, b"ready\n", "text/plain")
    server.attach(Metrics(), lambda: True, lambda: None, warning=lambda: "notification topic 'n' is missing")
    status, body, _ = server._route("GET", "/readyz")
    assert status == 200
    assert body == b"ready\nwarning: notification topic 'n' is missing\n"


async def test_the_service_starts_with_a_missing_notification_topic_and_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A service whose runbook notifies a missing topic consumes anyway; its warning is what /readyz shows."""
    seen: list[list[str]] = []

    async def check(bootstrap: str, needed: list[Needed], alerts: list[str], **_: Any) -> list[TopicProblem]:
        seen.append([t.name for t in needed])
        return problems_in([t for t in needed if t.warn_only], [], None)

    async def reachable(*_: Any, **__: Any) -> None:
        return None

    async def start(wait: float, **_: Any) -> None:  # it is told what sets its wait
        raise RuntimeError("consuming")

    monkeypatch.setattr(running, "check_connection", reachable)
    monkeypatch.setattr(running, "check_topics", check)
    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", runbooks_dir=tmp_path,
                        topics=["a"], deadletter_topic="dlq")
    service = Service(settings, runbooks=[_book("a", "responder.notifications")])
    service.publisher.start = start  # type: ignore[method-assign]
    with pytest.RaisesGroup(pytest.RaisesExc(RuntimeError, match="consuming")):
        await service.run()
    assert "responder.notifications" in seen[0]
    assert service.topics_missing is None
    assert "notification topic 'responder.notifications'" in (service.topics_warning or "")


async def test_a_notification_topic_is_asked_about_once_never_auto_created_or_waited_for(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A notification topic is asked about in one plain metadata request, never auto-created or waited for."""
    asked: list[tuple[tuple[str, ...], bool]] = []

    class Admin:
        async def _send_request(self, request: Any) -> Any:
            names, auto = request._topics, request._allow_auto_topic_creation
            asked.append((tuple(names), auto))
            topics = [{"topic": n, "error_code": 0 if n == "dlq" else 3, "partitions": []} for n in names]
            return type("Response", (), {"to_object": lambda _: {"topics": topics}})()

    async def with_admin(bootstrap: str, call: Any, **_: Any) -> Any:
        return await call(Admin())

    monkeypatch.setattr(topics, "with_admin", with_admin)
    monkeypatch.setattr(topics, "AUTO_CREATE_WAIT_S", 5.0)  # a wait on the notification topic would show as re-asks
    needed = [Needed("dlq", "dead-letter topic", "RESPONDER_DEADLETTER_TOPIC"),
              *notification_topics([_book("a", "responder.notifications")])]
    found = await topics.check_topics("k:1", needed, [])
    assert [(p.topic.name, p.error) for p in found] == [("responder.notifications", "missing")]
    assert [auto for names, auto in asked if "responder.notifications" in names] == [False]


def test_a_dry_run_runbook_s_notification_topics_are_not_checked() -> None:
    """A runbook in `mode: dry_run` publishes nothing, so its notify.kafka topics are not warned about."""
    dry = _book("d", "never.published").model_copy(update={"mode": Mode.DRY_RUN})
    assert [t.name for t in notification_topics([dry, _book("e", "published")])] == ["published"]


@pytest.mark.parametrize(("field", "setting"), [
    ("changelog_topic", "RESPONDER_CHANGELOG_TOPIC"), ("approvals_topic", "RESPONDER_APPROVALS_TOPIC"),
    ("approval_requests_topic", "RESPONDER_APPROVAL_REQUESTS_TOPIC"),
    ("operator_requests_topic", "RESPONDER_OPERATOR_REQUESTS_TOPIC"),
    ("deadletter_topic", "RESPONDER_DEADLETTER_TOPIC"), ("timeline_mirror_topic", "RESPONDER_TIMELINE_MIRROR_TOPIC"),
])
def test_a_notification_to_one_of_the_service_s_own_topics_is_refused(field: str, setting: str) -> None:
    """A notify.kafka step (or escalation) publishing to the changelog, approval, operator or DLQ topic: exit 3."""
    settings = Settings(kafka_bootstrap="k:1", topics=["alerts"], **{field: "own"})
    with pytest.raises(ConfigError, match=f"runbook x, step page publishes notifications to 'own'.*{setting}"):
        refuse_notifying_own_topics(settings, [_book("x", "fine", "own")])


def test_a_notification_to_an_alert_topic_is_refused_and_others_pass() -> None:
    """Publishing into an alert topic would be read back as an alert: refused; a topic of its own passes."""
    settings = Settings(kafka_bootstrap="k:1", topics=["alerts", "drift"])
    with pytest.raises(ConfigError, match="RESPONDER_TOPICS"):
        refuse_notifying_own_topics(settings, [_book("x", "drift")])
    refuse_notifying_own_topics(settings, [_book("x", "responder.notifications", "responder.escalations")])
