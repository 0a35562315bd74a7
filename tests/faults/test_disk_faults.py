"""Disk faults under the timeline: the real Service stops acting, reports unready, and recovers with nothing lost."""

from __future__ import annotations

import asyncio
import errno
import time
import urllib.request

import pytest

from responder.timeline.chain import parse_lines, verify_entries
from responder.timeline.store import TimelineStore
from tests.faults.cloud import direct, effects, marker_service, publish_findings, step_results
from tests.faults.table import FaultRow, record
from tests.integration.crash import fake_key
from tests.integration.harness import running, wait_for

pytestmark = pytest.mark.integration


class FaultyDisk:
    """The service's FileStore; while `error` is set, writes leave a torn half-batch and fail (or syncs fail)."""

    def __init__(self, inner: TimelineStore) -> None:
        self.inner = inner
        self.error: int | None = None
        self.on_sync = False
        self.refused = 0

    def read(self) -> bytes:
        return self.inner.read()

    def write(self, data: bytes) -> None:
        if self.error is not None and not self.on_sync:
            self.refused += 1
            self.inner.write(data[: len(data) // 2])
            raise OSError(self.error, errno.errorcode[self.error])
        self.inner.write(data)

    def sync(self) -> None:
        if self.error is not None and self.on_sync:
            self.refused += 1
            raise OSError(self.error, errno.errorcode[self.error])
        self.inner.sync()

    def rollback(self) -> None:
        self.inner.rollback()

    def close(self) -> None:
        self.inner.close()


def _readyz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.mark.parametrize(("fault", "error", "on_sync"), [
    ("disk full (ENOSPC on write)", errno.ENOSPC, False),
    ("disk EIO on fdatasync", errno.EIO, True),
])
async def test_disk_fault_pauses_unready_and_recovers(fault, error, on_sync, kafka_bootstrap, moto_server, topics,
                                                      unique, tmp_path):
    """While the timeline cannot be written no action happens and /readyz is 503; when it can, all is done once."""
    moto_server.reset()
    aws = direct(moto_server)
    bucket = f"effects-{unique}"
    await aws.call("s3", "create_bucket", Bucket=bucket)
    service = marker_service(kafka_bootstrap, aws, topics, unique, tmp_path, bucket, metrics_port=0)
    disk = FaultyDisk(service.recorder.store)
    service.recorder.store = disk
    service.recorder.retry_max = 0.2
    before, during = [fake_key() for _ in range(3)], [fake_key() for _ in range(3)]
    async with running(service):
        assert service.metrics_server is not None
        port = service.metrics_server.port
        await publish_findings(kafka_bootstrap, topics["alerts"], before)
        await wait_for(lambda: len(step_results(service, "escalate")) == 3)
        assert await asyncio.to_thread(_readyz, port) == 200
        disk.error, disk.on_sync = error, on_sync
        await publish_findings(kafka_bootstrap, topics["alerts"], during)
        await wait_for(lambda: service.recorder.stalled is not None)
        await asyncio.sleep(1.0)  # plenty of time to act, if it were going to act without a durable intent
        assert await asyncio.to_thread(_readyz, port) == 503
        acted_while_stalled = set(await effects(aws, bucket)) & set(during)
        assert not acted_while_stalled, "acted without a durable intent"
        disk.error = None
        freed = time.monotonic()
        await wait_for(lambda: any(k in step_results(service, "put-marker") for k in during), timeout=30)
        recover = time.monotonic() - freed
        await wait_for(lambda: len(step_results(service, "escalate")) == 6)
        assert await asyncio.to_thread(_readyz, port) == 200
    seen = await effects(aws, bucket)
    keys = before + during
    row = record(FaultRow(fault=f"disk: {fault}", events=6, expected=6, done=sum(seen[k] > 0 for k in keys),
                          duplicates=sum(max(0, seen[k] - 1) for k in keys),
                          lost=sum(seen[k] == 0 for k in keys), recover_s=recover,
                          note=f"{disk.refused} writes refused, {service.recorder.stalls} stalls"))
    assert (row.lost, row.duplicates) == (0, 0), row
    lines = service.settings.timeline_path.read_bytes().splitlines()
    count, _ = verify_entries(parse_lines(lines))
    assert count == len(lines)
