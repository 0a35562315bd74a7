"""One fleet replica served by `serve_rejoining` on a real broker and moto, made to fail once and rejoin: its
settings and topics (`one_replica`), and the run through the rejoin (`rejoined_once`): an alert before the failure,
one after it, both acted on by the time it returns."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from responder.actuators.aws.session import AwsSession
from responder.actuators.registry import Registry
from responder.ingest.changelog import ensure_changelog
from responder.ingest.kafka import ensure_topics
from responder.sandbox import SANDBOX_CREDENTIALS
from responder.service import Service, rebuilds, serve_rejoining
from responder.settings import Settings
from tests.integration.crash import effects, fake_key
from tests.integration.crash_worker import PutMarker, write_runbook
from tests.integration.fleet import stream


async def one_replica(bootstrap: str, aws: AwsSession, unique: str, tmp_path: Path, **overrides: Any) -> Settings:
    """A fleet replica's settings (one alert partition, its changelog, a runbook putting a marker per alert in the
    bucket `effects-<unique>`), with `overrides`; the topics, the changelog and the bucket made."""
    topic, changelog, bucket = f"alerts-{unique}", f"changelog-{unique}", f"effects-{unique}"
    await ensure_topics(bootstrap, [topic, f"dlq-{unique}"], partitions=1)
    await ensure_changelog(bootstrap, changelog, 1)
    await aws.call("s3", "create_bucket", Bucket=bucket)
    write_runbook(tmp_path / "runbooks", bucket)
    return Settings(**{
        "kafka_bootstrap": bootstrap, "topics": [topic], "deadletter_topic": f"dlq-{unique}",
        "group_id": f"rejoin-{unique}", "changelog_topic": changelog, "session_timeout_ms": 6000,
        "approvals_topic": f"approvals-{unique}", "fenced_rejoins": 5, "runbooks_dir": tmp_path / "runbooks",
        "timeline_path": tmp_path / "timeline.jsonl", "aws_endpoint_url": aws.endpoint_url,
        "aws_access_key_id": SANDBOX_CREDENTIALS["aws_access_key_id"],
        "aws_secret_access_key": SANDBOX_CREDENTIALS["aws_secret_access_key"], **overrides})


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 90) -> None:
    """Wait until `check()` holds, failing with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.2)


async def rejoined_once(settings: Settings, aws: AwsSession, bucket: str, *, arm: Callable[[], None] = lambda: None,
                        acted: Callable[[str], bool] = lambda key: True,
                        ) -> tuple[list[dict[str, Any]], list[Service], str, str]:
    """Serve `settings` with `serve_rejoining`; once the first service is ready, `arm()` and send an alert (`first`),
    wait for a second service (the rejoin), send another (`later`), and wait until moto holds both markers (in
    `bucket`: `one_replica`'s `effects-<unique>`) and
    `acted(later)`, then 2 s more (a redelivery acting again would show by then) before stopping as SIGTERM does.
    The logs, the services built, `first`, `later`."""
    registry = Registry()
    registry.add(PutMarker())
    make = rebuilds(settings, registry=registry, aws=aws)
    built: list[Service] = []

    def build(previous: Service | None) -> Service:
        built.append(make(previous))
        return built[-1]

    async def ready(n: int) -> bool:  # the n-th service built (0: the first) is consuming; serving has not ended
        assert not task.done(), task.exception() if not task.cancelled() else "cancelled"
        return len(built) > n and built[n].ready.is_set()

    bootstrap, topic = settings.kafka_bootstrap or "", settings.topics[0]
    first, later = fake_key(), fake_key()
    stop = asyncio.Event()  # ends serving as SIGTERM does, without signalling the pytest process (an xdist worker)
    with capture_logs() as logs:
        task = asyncio.create_task(serve_rejoining(build, rejoins=settings.fenced_rejoins, backoff=0.5, stop=stop))
        try:
            await until(lambda: ready(0), "the first service did not start")
            arm()
            await stream(bootstrap, topic, [first], 1, redeliver=0)
            await until(lambda: ready(1), "the replica did not rejoin")
            await stream(bootstrap, topic, [later], 1, redeliver=0)

            async def both_acted() -> bool:
                counted = await effects(aws, bucket)
                return counted[first] >= 1 and counted[later] >= 1 and acted(later)

            await until(both_acted, "the rebuilt service did not act on the alerts")
            await asyncio.sleep(2.0)  # had a redelivery acted again, its object would be in moto by now
            assert not task.done(), task
        finally:
            if not task.done():  # serving: stop it as a supervisor's SIGTERM does
                stop.set()
                await asyncio.wait_for(task, 60)
    return logs, built, first, later
