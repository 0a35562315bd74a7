"""Through the real broker: a SageMaker Model Monitor report with no time and no run names, published for two
monitoring runs, is two events (told apart by each record's broker time), and the same records read again by a
restarted service are repeats, as is the report replayed from the dead-letter topic."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from responder.actuators.aws.session import AwsSession
from responder.ingest.deadletter import replay_deadletters
from responder.ingest.kafka import ensure_topics
from responder.service import Service
from responder.timeline.chain import parse_lines
from tests.integration.harness import make_settings, running, wait_for
from tests.source_kit import REPORT

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
HOUR_MS = 3_600_000
RUN_AT = (int(time.time()) // 3600 - 3) * HOUR_MS  # two runs an hour apart, as the broker stamps them
# (CreateTime), recent: a topic deleting by time (7 days) may drop older records, and a replay withholds them


def _joined(path: Path) -> list[bool]:
    """The `repeat` flag of every `incident.joined` entry of the timeline at `path`."""
    entries = parse_lines(path.read_bytes().splitlines())
    return [bool(e.body["repeat"]) for e in entries if e.kind == "incident.joined"]


def _steps(path: Path) -> int:
    """How many step results the timeline at `path` holds."""
    return sum(e.kind == "step.result" for e in parse_lines(path.read_bytes().splitlines()))


async def _read(service: Service) -> None:
    async with running(service):
        await wait_for(lambda: service.pipeline.counters.records >= 2 or bool(service.deadlettered), timeout=60)
    assert service.deadlettered == {}


async def test_the_next_run_s_bare_report_is_a_new_event_and_a_reread_a_repeat(
        kafka_bootstrap: str, aws: AwsSession, topics: dict[str, str], unique: str, tmp_path: Path) -> None:
    """The next run's identical bare report is a new event, while a reread by another consumer group is a repeat."""
    await ensure_topics(kafka_bootstrap, ["responder.notifications"], partitions=1)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for n in range(2):
            await producer.send_and_wait(topics["alerts"], orjson.dumps(REPORT), key=b"fraud-scorer-prod",
                                         timestamp_ms=RUN_AT + n * HOUR_MS)
    finally:
        await producer.stop()
    timeline = tmp_path / "t.jsonl"
    await _read(Service(make_settings(kafka_bootstrap, aws, topics, unique, timeline, ROOT / "runbooks")))
    assert _joined(timeline) == [False]
    await _read(Service(make_settings(kafka_bootstrap, aws, topics, f"{unique}-again", timeline, ROOT / "runbooks")))
    assert _joined(timeline) == [False, True, True]


BESIDE_A_BAD_PART = {
    "unknown_shape": [REPORT, {"unknown": "shape"}],  # a JSON array's bad element
    "validation": {**REPORT, "violations": [*REPORT["violations"], {"no": "constraint_check_type"}]},
}


@pytest.mark.parametrize("reason", sorted(BESIDE_A_BAD_PART))
async def test_a_replayed_bare_report_keeps_its_broker_time_and_is_a_repeat(
        kafka_bootstrap: str, aws: AwsSession, topics: dict[str, str], unique: str, tmp_path: Path,
        reason: str) -> None:
    """A replayed bare report keeps its original broker time, so its violation keeps the same id and is a repeat."""
    await ensure_topics(kafka_bootstrap, ["responder.notifications"], partitions=1)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topics["alerts"], orjson.dumps(BESIDE_A_BAD_PART[reason]),
                                     key=b"fraud-scorer-prod", timestamp_ms=RUN_AT)
    finally:
        await producer.stop()
    timeline = tmp_path / "t.jsonl"
    first = Service(make_settings(kafka_bootstrap, aws, topics, unique, timeline, ROOT / "runbooks"))
    async with running(first):
        await wait_for(lambda: bool(first.deadlettered), timeout=60)
    assert first.deadlettered == {reason: 1}
    assert _steps(timeline) == 1
    target = f"replayed-{unique}"
    await ensure_topics(kafka_bootstrap, [target], partitions=1)
    assert (await replay_deadletters(kafka_bootstrap, topics["deadletter"], to_topic=target,
                                     idle_seconds=1.5)).replayed == 1
    again = Service(make_settings(kafka_bootstrap, aws, {**topics, "alerts": target}, unique, timeline,
                                  ROOT / "runbooks"))
    async with running(again):
        await wait_for(lambda: bool(again.deadlettered), timeout=60)
    assert _joined(timeline) == [True]
    assert _steps(timeline) == 1
