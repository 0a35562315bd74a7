"""A fleet member reads every decision from the first at each start; it tells those it reads again (on the topic
before it started) from new ones by the end offsets its approvals consumer read when it started."""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition

from responder.ingest.changelog import ensure_changelog
from responder.ingest.kafka import ensure_topics, publish
from responder.models.event import RawRecord
from responder.sandbox.fixtures import on_apache_kafka
from responder.service import Service
from responder.timeline.chain import parse_lines
from tests.integration.harness import make_settings, running, wait_for

pytestmark = pytest.mark.integration
kafka_bootstrap = on_apache_kafka()


async def test_a_fleet_member_tells_the_decisions_it_reads_again_from_new_ones(kafka_bootstrap, aws, topics, unique,
                                                                                tmp_path, runbooks_dir):
    """Two records on a decisions partition before the start are read again; the offsets after them are new."""
    approvals, changelog = f"approvals-{unique}", f"changelog-{unique}"
    await ensure_topics(kafka_bootstrap, [approvals], partitions=2)
    await ensure_changelog(kafka_bootstrap, changelog, 3)
    await publish(kafka_bootstrap, approvals, [b"{}", b"{}"], key=b"same-partition")
    service = Service(make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", runbooks_dir,
                                    changelog_topic=changelog, approvals_topic=approvals))
    async with running(service):
        ends = service.approvals._ends
    assert sorted(ends.values()) == [0, 2]
    [(filled, end)] = [(tp, n) for tp, n in ends.items() if n]
    assert filled.topic == approvals
    assert set(ends) == {TopicPartition(approvals, 0), TopicPartition(approvals, 1)}

    def at(offset: int) -> RawRecord:
        return RawRecord(topic=approvals, partition=filled.partition, offset=offset, value=b"{}")

    assert service.approvals.replayed(at(end - 1))
    assert not service.approvals.replayed(at(end))


async def test_a_forged_decision_is_recorded_and_counted_once_across_a_restart(kafka_bootstrap, aws, topics, unique,
                                                                               tmp_path, runbooks_dir):
    """A forged decision read again at a fleet member's restart is not recorded or counted again; a new forgery is."""
    approvals, changelog = f"approvals-{unique}", f"changelog-{unique}"
    await ensure_topics(kafka_bootstrap, [approvals], partitions=1)
    await ensure_changelog(kafka_bootstrap, changelog, 3)
    settings = make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", runbooks_dir,
                             changelog_topic=changelog, approvals_topic=approvals, approval_keys={"k1": "s"})

    def refused(service: Service, reason: str) -> float:
        return service.metrics.value("responder_decisions_refused_total", reason=reason)

    first = Service(settings)
    async with running(first):
        await publish(kafka_bootstrap, approvals, [b'{"forged": 1}'], key=b"inc")  # unsigned
        await wait_for(lambda: refused(first, "unsigned") == 1)
    again = Service(settings)  # the same replica restarted: it reads the decisions topic from the first again
    async with running(again):
        await publish(kafka_bootstrap, approvals, [b'{"forged": 2}'], key=b"inc",
                      headers=[("responder-key-id", b"k1"), ("responder-signature", b"0" * 64)])
        await wait_for(lambda: refused(again, "bad_signature") == 1)  # read after the first one, same partition
        assert refused(again, "unsigned") == 0
    entries = list(parse_lines(settings.timeline_path.read_bytes().splitlines()))
    rejected = [e.body["reason"] for e in entries if e.kind == "approval.rejected"]
    assert len(rejected) == 2
    assert rejected[0].startswith("unsigned")
    assert rejected[1].startswith("bad signature")
