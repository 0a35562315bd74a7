"""The topics a service writes to, and the alert and approvals topics it reads, checked before it consumes (aiokafka
only here).

A dead-letter topic that is missing (broker auto-creation off) or that this principal may not describe used to
surface only at the first poison record: its sends timed out for minutes, the service stopped, and every restart
blocked on the same record. `check_topics` asks the cluster's metadata for each topic the service needs (`Needed`)
and returns what is wrong with each (`TopicProblem`): missing, or refused by an ACL, with the command that creates
it. Nothing is created here unless the broker's own policy does it: the metadata request for every topic but the
changelog allows the broker's auto-creation (as the first send to them, or the consumer's start, would), the one
for the changelog never does (an auto-created changelog has the broker's partition count and no compaction).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka.errors import TopicAuthorizationFailedError, UnknownTopicOrPartitionError, for_code
from aiokafka.protocol.metadata import MetadataRequest

from responder.ingest.admin import ADMIN_DEADLINE, with_admin
from responder.models.runbook import Mode, Runbook
from responder.settings import Settings

log = structlog.get_logger(__name__)
RETRY_SECONDS = 10.0  # between two checks while a topic is missing
AUTO_CREATE_WAIT_S = 3.0  # Apache Kafka (KRaft) answers "unknown" to the request that auto-creates a topic


@dataclass(frozen=True)
class Needed:
    """A topic the service writes to, which must exist before it consumes."""

    name: str
    role: str  # what it is, for the message: "dead-letter topic"
    setting: str  # the environment variable naming it
    compact: bool = False  # created with cleanup.policy=compact
    co_partitioned: bool = False  # as many partitions as the alert topics
    auto_create: bool = True  # the broker's auto-creation (when on) may create it, as a first send would
    access: str = "WRITE"  # the ACL operation it needs besides DESCRIBE: READ for a topic it consumes
    warn_only: bool = False  # a runbook's notification topic: said loudly when missing, never waited for


@dataclass(frozen=True)
class TopicProblem:
    """Why a needed topic cannot be used, and what to do about it."""

    topic: Needed
    error: str  # "missing" or "not authorised"
    fix: str

    def __str__(self) -> str:
        then = (" (a notification to it fails unless the broker auto-creates it; containment goes on)"
                if self.topic.warn_only else "")
        return f"{self.topic.role} {self.topic.name!r} ({self.topic.setting}) is {self.error}: {self.fix}{then}"


NOTIFY_KAFKA = "notify.kafka.publish_message"


def notification_topics(books: Iterable[Runbook]) -> list[Needed]:
    """The literal topics runbooks' notify.kafka steps (and `on_failure` steps, the escalation path) publish to,
    each once, naming the first runbook and step (a `${…}` topic is refused at load, skipped here), and a runbook in
    `mode: dry_run` publishes nothing. Asked about in one plain metadata request: never auto-created by the check,
    never waited for (`auto_create=False`), so a missing one costs the start nothing."""
    out: dict[str, Needed] = {}
    for rb in books:
        if rb.mode is Mode.DRY_RUN:
            continue
        for step in (*rb.steps, *rb.on_failure):
            topic = step.with_.get("topic")
            if step.actuator == NOTIFY_KAFKA and isinstance(topic, str) and "${" not in topic and topic not in out:
                out[topic] = Needed(topic, "notification topic", f"runbook {rb.id}, step {step.id}",
                                    auto_create=False, warn_only=True)
    return list(out.values())


def needed_topics(settings: Settings, notifications: Sequence[Needed] = ()) -> list[Needed]:
    """The topics `responder run` with these settings writes to and does not create itself (the operator topics
    are created at start: running.py; a dry run produces nothing but its changelog), then the alert and approvals
    topics it reads (a missing one stopped the start after ~40 s with an UnknownTopicOrPartitionError not naming
    it, or, manually assigned, consumed nothing), then the runbooks' `notifications` (warn-only; none in a dry
    run). Each topic once."""
    out: list[Needed] = []
    if settings.changelog_topic:
        out.append(Needed(settings.changelog_topic, "changelog topic", "RESPONDER_CHANGELOG_TOPIC", compact=True,
                          co_partitioned=True, auto_create=False))
    if not settings.dry_run:
        out.append(Needed(settings.deadletter_topic, "dead-letter topic", "RESPONDER_DEADLETTER_TOPIC"))
        out.append(Needed(settings.approval_requests_topic, "approval requests topic",
                          "RESPONDER_APPROVAL_REQUESTS_TOPIC"))
        if settings.timeline_mirror_topic:
            out.append(Needed(settings.timeline_mirror_topic, "timeline mirror topic",
                              "RESPONDER_TIMELINE_MIRROR_TOPIC"))
    out += [Needed(topic, "alert topic", "RESPONDER_TOPICS", access="READ") for topic in settings.topics]
    out.append(Needed(settings.approvals_topic, "approvals topic", "RESPONDER_APPROVALS_TOPIC", access="READ"))
    if not settings.dry_run:
        out += notifications
    first = {topic.name: topic for topic in reversed(out)}  # the first Needed of each name (the one written to)
    return [topic for topic in out if first[topic.name] is topic]


def create_command(topic: Needed, partitions: int | None) -> str:
    """The `kafka-topics.sh` line that creates `topic` (replication is the operator's choice: 3 shown)."""
    count = str(partitions) if topic.co_partitioned and partitions else "N" if topic.co_partitioned else "3"
    line = f"kafka-topics.sh --create --topic {topic.name} --partitions {count} --replication-factor 3"
    if topic.compact:
        line += " --config cleanup.policy=compact --config min.insync.replicas=2"
    if topic.co_partitioned:
        line += " (as many partitions as the alert topics)"
    return line


def problems_in(needed: Sequence[Needed], described: Sequence[Mapping[str, Any]],
                alert_partitions: int | None) -> list[TopicProblem]:
    """What is wrong with each needed topic, from a metadata response's `topics` (a topic it leaves out is
    missing)."""
    errors = {str(t["topic"]): int(t["error_code"]) for t in described}
    out: list[TopicProblem] = []
    for topic in needed:
        code = errors.get(topic.name, UnknownTopicOrPartitionError.errno)
        if code == 0:
            continue
        error = for_code(code)
        if error is TopicAuthorizationFailedError:
            out.append(TopicProblem(topic, "not authorised", f"grant this principal DESCRIBE and {topic.access} on it"))
        elif error is UnknownTopicOrPartitionError:
            out.append(TopicProblem(topic, "missing", "create it: " + create_command(topic, alert_partitions)))
        elif getattr(error, "retriable", False):  # being created, a leader being elected: there, soon usable
            continue
        else:
            out.append(TopicProblem(topic, f"not usable ({error.__name__})", "see the broker's log"))
    return out


def _partitions(described: Sequence[Mapping[str, Any]], alert_topics: Sequence[str]) -> int | None:
    counts = {len(t["partitions"]) for t in described if t["topic"] in alert_topics and t["error_code"] == 0}
    return counts.pop() if len(counts) == 1 else None


async def check_topics(bootstrap: str, needed: Sequence[Needed], alert_topics: Sequence[str], *,
                       options: Mapping[str, Any] | None = None, deadline: float = ADMIN_DEADLINE,
                       wait_set_by: str | None = None) -> list[TopicProblem]:
    """Ask the cluster's metadata about each needed topic (and the alert topics, for the changelog's partition
    count, never creating those); the problems found, none when every topic can be used. All within `deadline`
    (`with_admin`; `wait_set_by` what sets it), so a topic being auto-created is waited for at most half of it."""

    async def describe(admin: Any, names: list[str], auto: bool) -> list[Mapping[str, Any]]:
        if not names:
            return []
        response = await admin._send_request(MetadataRequest(names, allow_auto_topic_creation=auto))
        topics: list[Mapping[str, Any]] = response.to_object()["topics"]
        return topics

    async def created(admin: Any, names: list[str]) -> list[Mapping[str, Any]]:
        """`describe`, allowing auto-creation: a topic it answers unknown is asked about again for a while (a
        broker auto-creating it says so only to a later request), then reported missing."""
        wait = min(AUTO_CREATE_WAIT_S, deadline / 2)  # within the deadline, which cuts the whole call
        described, until = await describe(admin, names, True), time.monotonic() + wait
        while time.monotonic() < until and any(t["error_code"] == UnknownTopicOrPartitionError.errno
                                                for t in described):
            await asyncio.sleep(0.2)
            described = await describe(admin, names, True)
        return described

    async def call(admin: Any) -> list[Mapping[str, Any]]:
        auto = [t.name for t in needed if t.auto_create]
        fixed = [t.name for t in needed if not t.auto_create] + [t for t in alert_topics if t not in auto]
        return [*await created(admin, auto), *await describe(admin, fixed, False)]

    described = await with_admin(bootstrap, call, options=options, deadline=deadline, wait_set_by=wait_set_by)
    return problems_in(needed, described, _partitions(described, alert_topics))


async def await_topics(check: Callable[[], Any], stop: asyncio.Event, report: Callable[[str | None], None], *,
                       retry_s: float = RETRY_SECONDS, warn: Callable[[str | None], None] = lambda _: None) -> bool:
    """Check (`check()`: the problems, see `check_topics`) until every needed topic can be used (True) or
    `stop` is set (False, also when it was set during a check that passed). While one cannot, `report` gets the
    reason (`/readyz`'s) and one error line says which topic and how to create it, again only when that changes;
    `report(None)` once they are all there. A warn-only topic (a runbook's notification topic) is never waited
    for: `warn` gets what is wrong with those (None: nothing), and one warning line says it, when that changes."""
    said: list[TopicProblem] = []
    warned: list[TopicProblem] = []
    while True:
        found: list[TopicProblem] = await check()
        problems = [p for p in found if not p.topic.warn_only]
        warnings = [p for p in found if p.topic.warn_only]
        warn("; ".join(map(str, warnings)) or None)
        if warnings and warnings != warned:
            log.warning("kafka_notification_topics_missing", detail="; ".join(map(str, warnings)),
                        topics=[p.topic.name for p in warnings])
        warned = warnings
        if not problems:
            report(None)
            if said:
                log.info("kafka_topics_ready", topics=[p.topic.name for p in said])
            return not stop.is_set()
        reason = "; ".join(map(str, problems))
        report(f"not consuming until every topic it needs is there: {reason}")
        if problems != said:
            log.error("kafka_topics_missing", detail=reason, retry_in_s=retry_s,
                      topics=[p.topic.name for p in problems])
            said = problems
        try:
            await asyncio.wait_for(stop.wait(), retry_s)
        except TimeoutError:
            continue
        return False
