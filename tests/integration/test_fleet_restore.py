"""A fleet replica restores its partitions in the background: a changelog read that waits (a broker that does not
answer, a changelog that stops short) holds up neither the replica's other partitions nor its group membership."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from responder.ingest.changelog import ensure_changelog
from responder.sandbox.fixtures import on_apache_kafka
from responder.service import Service
from tests.findings import envelope_bytes, guardduty_finding
from tests.integration.harness import make_settings, running, wait_for
from tests.integration.test_deadletter import _seed, _status
from tests.integration.test_unreadable import _produce

pytestmark = pytest.mark.integration
kafka_bootstrap = on_apache_kafka()  # the broker aiokafka meets in production, when Java is present


async def _contained(aws: Any, key: str, user: str) -> None:
    """Wait until moto says the access key is Inactive (TimeoutError after 60 s)."""
    async with asyncio.timeout(60):
        while await _status(aws, key, user) != "Inactive":
            await asyncio.sleep(0.2)


async def test_a_restore_that_waits_holds_up_neither_the_other_partitions_nor_the_membership(
    kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir
):
    """Partition 0's changelog read waits past the session timeout: partition 1's finding is contained meanwhile
    (counted in moto), the replica keeps its group generation (no rebalance), `/readyz` says 0 is being restored and
    its finding is not acted on; once the read goes on, 0 is restored and its finding is contained."""
    changelog = f"changelog-{unique}"
    await ensure_changelog(kafka_bootstrap, changelog, 3)
    waiting, other = await _seed(aws, "ml-w"), await _seed(aws, "ml-o")
    await _produce(kafka_bootstrap, topics["alerts"], tmp_path,
                   [(envelope_bytes(guardduty_finding(waiting, user="ml-w")), False)], "--partition", "0")
    settings = make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", runbooks_dir,
                             changelog_topic=changelog, session_timeout_ms=6000)
    service = Service(settings)
    assert service.fleet is not None
    go, real = asyncio.Event(), service.fleet.changelog.read

    async def read(partition: int, timeout: float = 30.0) -> list[object]:
        if partition == 0:  # as if the broker did not answer for partition 0's changelog
            await go.wait()
        return await real(partition, timeout)

    service.fleet.changelog.read = read  # type: ignore[assignment,method-assign]
    async with running(service):
        fleet = service.fleet
        await wait_for(lambda: {1, 2} <= fleet.owned and 0 in fleet.restoring, timeout=60)
        generation = service.ingest.consumer._coordinator.generation
        await _produce(kafka_bootstrap, topics["alerts"], tmp_path,
                       [(envelope_bytes(guardduty_finding(other, user="ml-o")), False)], "--partition", "1")
        await _contained(aws, other, "ml-o")
        await asyncio.sleep(8.0)  # past the 6 s session timeout: heartbeats went on while the read waited
        assert service.ingest.consumer._coordinator.generation == generation
        assert service.unready() == "partition(s) 0 being restored from the changelog (paused until then)"
        assert await _status(aws, waiting, "ml-w") == "Active"
        go.set()
        await wait_for(lambda: 0 in fleet.owned, timeout=60)
        await _contained(aws, waiting, "ml-w")
        assert service.ready_now()
        assert service.ingest.consumer._coordinator.generation == generation
