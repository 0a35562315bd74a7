"""What the tabletop runner knows about a scenario's service while it runs, and the hooks that count it.

`Status` is what both hosts (responder/tabletop/host.py) report to the runner; `Tracked` hooks one `Service`, in
the runner's process or in the child's, to count the consumer loops' polls and the records polled and handled.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import BaseModel, Field

from responder.models.timeline import EntryKind, TimelineEntry
from responder.service import Service
from responder.tabletop.faults import FaultyAws


class Status(BaseModel):
    """What the runner needs to know about the service to decide that it has settled."""

    ready: bool = False
    running: bool = True
    error: str | None = None
    alert_polls: int = 0
    approval_polls: int = 0
    polled: int = 0
    handled: int = Field(default=0, description="alert records handled and committed by the partition lanes")
    due: bool = Field(default=False, description="a parked step's deadline has passed on the virtual clock")
    kills: list[str] = Field(default_factory=list, description="kill points reached (API names)")
    deadlettered: dict[str, int] = Field(default_factory=dict)
    injected: list[dict[str, Any]] = Field(default_factory=list, description="AWS faults injected")
    first_action_wall: float | None = Field(default=None, description="epoch (wall) of the first acted step")


class Tracked:
    """Counts the consumer loops' polls, the records polled and the records handled (hooks on one Service)."""

    def __init__(self, service: Service, aws: FaultyAws) -> None:
        self.service, self.aws = service, aws
        self.alert_polls = self.approval_polls = self.polled = self.handled = 0
        self.first_action_wall: float | None = None
        alerts, approvals, handle = service.ingest.poll, service.approvals.poll, service.flow.handle

        async def alerts_poll(timeout_ms: int = 200) -> Any:
            self.alert_polls += 1
            got = await alerts(timeout_ms)
            self.polled += sum(len(v) for v in got.values())
            return got

        async def handled(chunk: dict[Any, list[Any]]) -> None:  # a lane's chunk: acted on, flushed, committed
            await handle(chunk)
            self.handled += sum(len(v) for v in chunk.values())

        async def approvals_poll(timeout_ms: int = 200) -> Any:
            self.approval_polls += 1
            return await approvals(timeout_ms)

        service.ingest.poll = alerts_poll  # type: ignore[method-assign]
        service.approvals.poll = approvals_poll  # type: ignore[method-assign]
        service.flow.handle = handled
        service.recorder.observers.append(self._observe)

    def _observe(self, entry: TimelineEntry) -> None:
        if self.first_action_wall is None and entry.kind == EntryKind.STEP_RESULT and entry.body.get("status") == "ok":
            self.first_action_wall = time.time()

    def status(self, task: asyncio.Task[None]) -> Status:
        """The counters, the service's state and the faults seen so far."""
        s = self.service
        error = repr(task.exception()) if task.done() and not task.cancelled() and task.exception() else None
        return Status(ready=s.ready.is_set(), running=not task.done(), error=error, alert_polls=self.alert_polls,
                      approval_polls=self.approval_polls, polled=self.polled, handled=self.handled,
                      due=any(p.deadline <= s.clock() for p in s.engine.state.parked_steps()),
                      kills=[k.operation for k in self.aws.kills if k.reached.is_set()],
                      deadlettered=dict(s.deadlettered), injected=list(self.aws.injected),
                      first_action_wall=self.first_action_wall)
