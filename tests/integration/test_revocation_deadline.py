"""A fleet replica whose revocation outlasts its deadline (a cloud call that never answers, in the chunk in hand) cuts
it on Apache Kafka: the chunk is cancelled uncommitted, the service fails with RevocationCut (which rejoins as a fence
does), and the partition's next owner resolves the cut step's intent with `verify()`: the effect stays one."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from responder.actuators.aws.session import AwsSession
from responder.actuators.registry import Registry
from responder.errors_kafka import RevocationCut
from responder.ingest.changelog import ensure_changelog
from responder.ingest.kafka import ensure_topics
from responder.sandbox import SANDBOX_CREDENTIALS
from responder.sandbox.fixtures import on_apache_kafka
from responder.service import Service
from responder.service.rejoinreasons import rejoin_reason
from responder.settings import Settings
from tests.integration.crash import effects, fake_key
from tests.integration.crash_worker import PutMarker, write_runbook
from tests.integration.fleet import stream
from tests.integration.harness import wait_for

pytestmark = pytest.mark.integration
kafka_bootstrap = on_apache_kafka()


class Stuck:
    """An AwsCaller whose first `put_object` lands, then never answers until cancelled (`verify()` must find it)."""

    def __init__(self, aws: AwsSession) -> None:
        self._aws = aws
        self.stuck = asyncio.Event()
        self.cancelled = False

    async def call(self, service: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        """The real answer, but for the first `put_object`: it lands, then its answer never comes."""
        if operation == "put_object" and not self.stuck.is_set():
            await self._aws.call(service, operation, **kwargs)
            self.stuck.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled = True
                raise
        return await self._aws.call(service, operation, **kwargs)


def _results(timeline: Path, key: str) -> list[dict[str, Any]]:
    """The step results for `key` in a replica's timeline."""
    if not timeline.exists():
        return []
    entries = [orjson.loads(line) for line in timeline.read_bytes().splitlines()]
    return [e["body"] for e in entries if e["kind"] == "step.result" and e["body"].get("target") == key]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("transactions", ["off", "on"])
async def test_a_revocation_past_its_deadline_is_cut_and_the_next_owner_acts_once(
        kafka_bootstrap: str, aws: AwsSession, unique: str, tmp_path: Path, transactions: str) -> None:
    """A revocation stuck past its deadline is cut (RevocationCut); the next owner verifies: one effect, one result."""
    topic, changelog, bucket = f"alerts-{unique}", f"changelog-{unique}", f"effects-{unique}"
    await ensure_topics(kafka_bootstrap, [topic, f"dlq-{unique}"], partitions=1)
    await ensure_changelog(kafka_bootstrap, changelog, 1)
    await aws.call("s3", "create_bucket", Bucket=bucket)
    write_runbook(tmp_path / "runbooks", bucket)

    def settings(name: str) -> Settings:
        return Settings(
            kafka_bootstrap=kafka_bootstrap, topics=[topic], deadletter_topic=f"dlq-{unique}", group_id=f"cut-{unique}",
            changelog_topic=changelog, session_timeout_ms=6000, approvals_topic=f"approvals-{unique}",
            kafka_transactions=transactions, runbooks_dir=tmp_path / "runbooks",
            timeline_path=tmp_path / f"{name}.jsonl", aws_endpoint_url=aws.endpoint_url,
            aws_access_key_id=SANDBOX_CREDENTIALS["aws_access_key_id"],
            aws_secret_access_key=SANDBOX_CREDENTIALS["aws_secret_access_key"])

    registry = Registry()
    registry.add(PutMarker())
    stuck, key = Stuck(aws), fake_key()
    first = Service(settings("first"), registry=registry, aws=stuck)
    first.revocation_deadline = 3.0  # the rebalance timeout's own (120 s) less its margin would be 103 s
    serving_first = asyncio.create_task(first.run())
    second: Service | None = None
    serving_second: asyncio.Task[None] | None = None
    try:
        await wait_for(first.ready.is_set, 60, what="the first replica did not start", serving=serving_first)
        await stream(kafka_bootstrap, topic, [key], 1, redeliver=0)
        await wait_for(stuck.stuck.is_set, 60, what="the step did not call", serving=serving_first)
        second = Service(settings("second"), registry=registry, aws=aws)  # joins: the group rebalances
        serving_second = asyncio.create_task(second.run())
        with pytest.raises(ExceptionGroup) as ended:  # the service's loops' task group
            await asyncio.wait_for(serving_first, 90)  # without the deadline it waits for the call for ever
        assert ended.group_contains(RevocationCut, match="took longer than 3 s", depth=None)
        assert rejoin_reason(ended.value) == "fenced"  # `responder run` rebuilds it in-process
        assert stuck.cancelled
        await wait_for(lambda: bool(_results(tmp_path / "second.jsonl", key)), 120,
                       what="the next owner did not act", serving=serving_second)
    finally:
        if not serving_first.done():
            first.request_stop()
            await asyncio.wait_for(asyncio.gather(serving_first, return_exceptions=True), 60)
        if second is not None and serving_second is not None:
            second.request_stop()
            await asyncio.wait_for(serving_second, 60)
    assert _results(tmp_path / "first.jsonl", key) == []
    [result] = _results(tmp_path / "second.jsonl", key)
    assert (result["status"], result.get("recovered")) == ("ok", True)  # by verify(), not a second put
    assert (await effects(aws, bucket))[key] == 1
