"""A fleet replica restores its partitions in the background: a changelog read that waits (a broker that does not
answer, a changelog that stops short) holds up neither the replica's other partitions nor its group membership, and
no quota is counted short meanwhile."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from responder.ingest.changelog import ensure_changelog
from responder.sandbox.fixtures import on_apache_kafka
from responder.service import Service
from tests.findings import envelope_bytes, guardduty_finding
from tests.integration.harness import access_key, key_status, make_settings, running, wait_for
from tests.integration.unreadable_producer import produce

pytestmark = pytest.mark.integration
kafka_bootstrap = on_apache_kafka()  # the broker aiokafka meets in production, when Java is present


async def _contained(aws: Any, key: str, user: str) -> None:
    """Wait until moto says the access key is Inactive (TimeoutError after 60 s)."""
    async with asyncio.timeout(60):
        while await key_status(aws, key, user) != "Inactive":
            await asyncio.sleep(0.2)


async def _held_fleet(kafka_bootstrap: str, aws: Any, topics: dict[str, str], unique: str, tmp_path: Path,
                     runbooks_dir: Path, **extra: Any) -> tuple[Service, asyncio.Event]:
    """A fleet replica (its changelog made, 3 partitions) whose changelog read of partition 0 waits until the returned
    event is set, as if the broker did not answer for it; the other partitions read as usual."""
    changelog = f"changelog-{unique}"
    await ensure_changelog(kafka_bootstrap, changelog, 3)
    service = Service(make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", runbooks_dir,
                                    changelog_topic=changelog, session_timeout_ms=6000, **extra))
    assert service.fleet is not None
    go, real = asyncio.Event(), service.fleet.changelog.read

    async def read(partition: int, timeout: float = 30.0) -> list[object]:
        if partition == 0:
            await go.wait()
        return await real(partition, timeout)

    service.fleet.changelog.read = read  # type: ignore[assignment,method-assign]
    return service, go


async def _send(kafka_bootstrap: str, topic: str, tmp_path: Path, key: str, user: str, partition: int) -> None:
    """Produce a GuardDuty finding naming the access key to one partition of the alert topic."""
    await produce(kafka_bootstrap, topic, tmp_path, [(envelope_bytes(guardduty_finding(key, user=user)), False)],
                  "--partition", str(partition))


async def test_a_restore_that_waits_holds_up_neither_the_other_partitions_nor_the_membership(
    kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir
):
    """A partition restore that waits holds up neither other partitions' findings nor the group membership."""
    waiting, other = await access_key(aws, "ml-w"), await access_key(aws, "ml-o")
    await _send(kafka_bootstrap, topics["alerts"], tmp_path, waiting, "ml-w", 0)
    service, go = await _held_fleet(kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir)
    async with running(service):
        fleet = service.fleet
        assert fleet is not None
        await wait_for(lambda: {1, 2} <= fleet.owned and 0 in fleet.restoring, timeout=60)
        generation = service.ingest.consumer._coordinator.generation
        await _send(kafka_bootstrap, topics["alerts"], tmp_path, other, "ml-o", 1)
        await _contained(aws, other, "ml-o")
        await asyncio.sleep(8.0)  # past the 6 s session timeout: heartbeats went on while the read waited
        assert service.ingest.consumer._coordinator.generation == generation
        assert service.unready() == "partition(s) 0 being restored from the changelog (paused until then)"
        held = {"topic": topics["alerts"], "partition": "0"}
        assert service.metrics.value("responder_partition_held", **held) == 1
        assert service.metrics.value("responder_partition_held", **{**held, "partition": "1"}) == 0
        assert await key_status(aws, waiting, "ml-w") == "Active"
        go.set()
        await wait_for(lambda: 0 in fleet.owned, timeout=60)
        await _contained(aws, waiting, "ml-w")
        assert service.ready_now()
        assert service.metrics.value("responder_partition_held", **held) == 0
        assert service.ingest.consumer._coordinator.generation == generation


async def test_a_quota_is_not_counted_short_while_a_partition_is_restored(
    kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir
):
    """A quota-bound step waits parked while another partition is still being restored, then goes on by itself."""
    early, later = await access_key(aws, "ml-e"), await access_key(aws, "ml-l")
    service, go = await _held_fleet(kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir,
                                    guard_quotas=[{"actuator": "aws.iam.*", "max": 5, "window": 900}])
    async with running(service):
        fleet = service.fleet
        assert fleet is not None
        await wait_for(lambda: {1, 2} <= fleet.owned and 0 in fleet.restoring, timeout=60)
        await _send(kafka_bootstrap, topics["alerts"], tmp_path, early, "ml-e", 1)
        await wait_for(lambda: any(e.kind == "approval.requested" for e in service.recorder.entries()), timeout=60)
        [trip] = [e.body for e in service.recorder.entries() if e.kind == "guard.tripped"]
        assert trip["guard"] == "quota_uncounted"
        assert "partition(s) 0 are not restored yet" in trip["detail"], trip
        await asyncio.sleep(1.0)  # the approvals loop polls every 200 ms: it must not take the step up yet
        assert await key_status(aws, early, "ml-e") == "Active"
        go.set()
        await _contained(aws, early, "ml-e")
        kinds = [e.kind for e in service.recorder.entries()]
        assert kinds.index("approval.requested") < kinds.index("approval.withdrawn"), kinds
        assert 0 in fleet.owned
        await _send(kafka_bootstrap, topics["alerts"], tmp_path, later, "ml-l", 1)
        await _contained(aws, later, "ml-l")
        assert [e.body["guard"] for e in service.recorder.entries() if e.kind == "guard.tripped"] == ["quota_uncounted"]
