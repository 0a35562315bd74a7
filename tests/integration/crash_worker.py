"""The service as the crash test runs it: a real `Service`, plus one test actuator whose every apply leaves a new
S3 object, so applying twice would show as two objects in moto.

Run as `python -m tests.integration.crash_worker` with RESPONDER_* settings in the environment. It imports
everything first, writes nothing until CRASH_GO_FILE exists (so the next worker warms up while the previous one
runs), and creates CRASH_READY_FILE once it has appended its first timeline entry, i.e. once it is executing
runbooks; the file holds the seconds from consuming to that first entry. `<CRASH_READY_FILE>.serving` appears
as soon as it consumes (and handles SIGTERM).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from pathlib import Path

from pydantic import Field

from responder import log
from responder.actuators.aws.session import AwsSession
from responder.actuators.base import ActuationContext, ActuationResult, Actuator, Params, PlanPreview
from responder.actuators.registry import Registry
from responder.service import Service, rebuilds, serve_rejoining
from responder.settings import Settings


def marker_runbook(runbook_id: str, description: str, *, retries: int | str = 3, timeout: int | str = 30) -> str:
    """A runbook whose one step, put-marker, leaves a marker object per compromised key in the bucket `BUCKET` (a
    placeholder), with `retries` and `timeout` (numbers or placeholders)."""
    return f"""\
id: {runbook_id}
version: 1
description: {description}
owner: tests
mode: enforce
trigger:
  source: guardduty
  type: "*IAMUser/*"
group_by: "${{event.account}}:${{event.resource.access_key.id}}"
window: 3600
steps:
  - id: put-marker
    actuator: test.s3.put_marker
    with:
      bucket: BUCKET
      marker: ${{event.resource.access_key.id}}
    retries: {retries}
    timeout: {timeout}
"""


RUNBOOK = marker_runbook("crash-marker", "Leave one marker object per compromised key (crash test).")


class MarkerParams(Params):
    """Where to leave the marker."""

    bucket: str
    marker: str = Field(pattern=r"^[A-Z0-9]{4,64}$")


class PutMarker(Actuator[MarkerParams]):
    """Create a new, uniquely named object under effects/<marker>/: NOT idempotent by itself.

    Example::

        - id: put-marker
          actuator: test.s3.put_marker
          with: {bucket: effects, marker: AKIAEXAMPLE0000000000}
    """

    name = "test.s3.put_marker"
    params = MarkerParams
    permissions = ("s3:PutObject", "s3:ListBucket")

    def target(self, p: MarkerParams) -> str:
        return p.marker

    async def plan(self, p: MarkerParams, ctx: ActuationContext) -> PlanPreview:
        return PlanPreview(target=p.marker, summary=f"put a marker for {p.marker}")

    async def apply(self, p: MarkerParams, ctx: ActuationContext) -> ActuationResult:
        await asyncio.sleep(random.uniform(0, 0.03))
        key = f"effects/{p.marker}/{uuid.uuid4().hex}"
        await ctx.aws.call("s3", "put_object", Bucket=p.bucket, Key=key, Body=ctx.key.encode())
        await asyncio.sleep(random.uniform(0, 0.03))
        return ActuationResult(changed=True, target=p.marker, after={"object": key})

    async def verify(self, p: MarkerParams, ctx: ActuationContext) -> bool:
        listed = await ctx.aws.call("s3", "list_objects_v2", Bucket=p.bucket, Prefix=f"effects/{p.marker}/")
        return int(listed.get("KeyCount", 0)) > 0


def write_runbook(directory: Path, bucket: str) -> None:
    """The crash runbook, pointing at `bucket`."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "crash-marker.yaml").write_text(RUNBOOK.replace("BUCKET", bucket), encoding="utf-8")


def _signalled(path: Path) -> bool:
    return path.exists()


async def main() -> None:
    """Wait for the go signal, then run the service until killed (or SIGTERM)."""
    settings = Settings()
    log.configure("json", "warning")
    registry = Registry()
    registry.add(PutMarker())
    aws: AwsSession = AwsSession.from_settings(settings)
    go, ready = Path(os.environ["CRASH_GO_FILE"]), Path(os.environ["CRASH_READY_FILE"])
    while not _signalled(go):
        await asyncio.sleep(0.005)
    built: list[Service] = []

    make = rebuilds(settings, registry=registry, aws=aws)

    def build(previous: Service | None) -> Service:  # as `responder run` does: a fenced replica rejoins
        built.append(make(previous))
        return built[-1]

    task = asyncio.create_task(serve_rejoining(build, rejoins=settings.fenced_rejoins))
    while not built:
        await asyncio.sleep(0.001)
    service = built[0]
    await service.ready.wait()
    os.close(os.open(f"{ready}.serving", os.O_CREAT | os.O_WRONLY, 0o644))
    consuming, start = time.monotonic(), service.recorder.next_seq
    while service.recorder.next_seq == start and not task.done():
        await asyncio.sleep(0.001)
    fd = os.open(ready, os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, f"{time.monotonic() - consuming:.3f}".encode())
    os.close(fd)
    await task


if __name__ == "__main__":
    asyncio.run(main())
