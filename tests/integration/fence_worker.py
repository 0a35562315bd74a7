"""A `responder run` replica for the zombie test: a runbook whose first step holds for a few seconds (the replica
is paused there) and whose second step leaves a new S3 object per call (counted in moto).

Run as `python -m tests.integration.fence_worker` with RESPONDER_* settings in the environment; it creates
`FENCE_READY_FILE` once it consumes, and `FENCE_READY_FILE.2` once the service it rebuilt after a fence does.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from pydantic import Field

from responder import log
from responder.actuators.aws.session import AwsSession
from responder.actuators.base import ActuationContext, ActuationResult, Actuator, Params, PlanPreview
from responder.actuators.registry import Registry
from responder.service import Service, health_server, rebuilds, serve_rejoining
from responder.settings import Settings
from tests.integration.crash_worker import RUNBOOK as CRASH_RUNBOOK
from tests.integration.crash_worker import PutMarker

RUNBOOK = CRASH_RUNBOOK.replace("id: crash-marker", "id: fence-marker").replace("steps:\n", """steps:
  - id: hold
    actuator: test.hold
    with:
      seconds: 3
    timeout: 60
""")  # the crash runbook with a first step that holds while the replica is paused


class HoldParams(Params):
    """How long to hold."""

    seconds: float = Field(ge=0, le=30)


class Hold(Actuator[HoldParams]):
    """Wait `seconds`, change nothing (the replica is paused while it holds).

    Example::

        - id: hold
          actuator: test.hold
          with: {seconds: 3}
    """

    name = "test.hold"
    params = HoldParams
    permissions = ()

    def target(self, p: HoldParams) -> str:
        return "hold"

    async def plan(self, p: HoldParams, ctx: ActuationContext) -> PlanPreview:
        return PlanPreview(target="hold", summary=f"hold {p.seconds:g} s")

    async def apply(self, p: HoldParams, ctx: ActuationContext) -> ActuationResult:
        await asyncio.sleep(p.seconds)
        return ActuationResult(changed=False, target="hold")

    async def verify(self, p: HoldParams, ctx: ActuationContext) -> bool:
        return True


def write_runbook(directory: Path, bucket: str) -> None:
    """The fence runbook, pointing at `bucket`."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "fence-marker.yaml").write_text(RUNBOOK.replace("BUCKET", bucket), encoding="utf-8")


async def main() -> None:
    """Run the service until it stops (fenced) or is killed."""
    settings = Settings()
    log.configure("json", "info")
    registry = Registry()
    registry.add(PutMarker())
    registry.add(Hold())
    built: list[Service] = []

    health = health_server(settings)  # as `responder run`: the process's, kept across a rejoin
    make = rebuilds(settings, registry=registry, aws=AwsSession.from_settings(settings), metrics_server=health)

    def build(previous: Service | None) -> Service:  # as `responder run` does: a fenced replica rejoins
        built.append(make(previous))
        return built[-1]

    task = asyncio.create_task(serve_rejoining(build, rejoins=settings.fenced_rejoins))
    ready = Path(os.environ["FENCE_READY_FILE"])
    served = 0
    while not task.done():  # FENCE_READY_FILE once the first service consumes, `<it>.<n>` once the n-th does
        if len(built) > served and built[served].ready.is_set():
            name = ready if served == 0 else Path(f"{ready}.{served + 1}")
            os.close(os.open(name, os.O_CREAT | os.O_WRONLY, 0o644))
            served += 1
        await asyncio.sleep(0.01)
    await task


if __name__ == "__main__":
    asyncio.run(main())
