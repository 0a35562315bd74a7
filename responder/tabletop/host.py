"""Where a scenario's service runs: in the runner's process, or in a child process a SIGKILL can really kill.

Both hosts answer the same questions for the runner (`Status`): how many polls each consumer loop made,
how many alert records were polled and how many were handled (acted on, durable and committed: the poll loop
hands records to per-partition lanes and polls again at once, so polled is not handled), whether a parked
step is due, whether a kill point was reached. `Status`, and `Tracked` (the hooks on one Service that count
what it reports), are in responder/tabletop/status.py and re-exported here.
The child is `python -m responder.tabletop.child CONFIG`, driven over its stdin/stdout (one JSON line
per request and per reply); the virtual clock lives in the child and moves only when told (`at`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, Field, SecretStr

import responder
from responder.errors import ChainBroken
from responder.models.timeline import TimelineEntry
from responder.sandbox import lifeline
from responder.service import Service
from responder.settings import Settings
from responder.tabletop.faults import FaultyAws, VirtualClock
from responder.tabletop.models import AwsFault, KillFault
from responder.tabletop.sandboxed import SandboxSettings
from responder.tabletop.status import Status, Tracked
from responder.timeline.chain import parse_lines

__all__ = ["ROOT", "ChildConfig", "ChildProcess", "InProcess", "Status", "Tracked", "revealed"]

ROOT = str(Path(responder.__file__).resolve().parents[1])  # the child imports the same responder as we do


class InProcess:
    """The service as a task of the runner's own event loop (every scenario without a kill fault)."""

    def __init__(self, settings: Settings, aws: FaultyAws, clock: VirtualClock) -> None:
        self.settings, self.aws, self.clock = settings, aws, clock

    async def start(self) -> None:
        """Build the service and start it; return when it consumes."""
        self.service = Service(self.settings, aws=self.aws, clock=self.clock)
        self.tracked = Tracked(self.service, self.aws)
        self.task = asyncio.create_task(self.service.run())
        await asyncio.wait_for(self.service.ready.wait(), 30)

    async def at(self, offset: float) -> None:
        """Move the (shared) virtual clock."""
        self.clock.at(offset)

    async def status(self) -> Status:
        """The service's counters, read directly."""
        return self.tracked.status(self.task)

    def entries(self) -> list[TimelineEntry]:
        """The timeline as the recorder holds it."""
        return list(self.service.recorder.entries())

    async def stop(self) -> Status:
        """Drain, commit, stop; the last status."""
        self.service.request_stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.task, 30)
        return self.tracked.status(self.task)


class ChildConfig(BaseModel):
    """Everything the child needs to build the same service the runner would have built."""

    settings: dict[str, Any]
    faults: list[AwsFault | KillFault]
    handled: list[str] = Field(default_factory=list, description="kill points already used (not armed again): an "
                               "operation once per kill during it, so a second `kill_during` on it stays armed")
    start: float
    now: float

    def service_settings(self) -> Settings:
        """The settings the runner sent, the defaults for the rest (nothing from the child's environment)."""
        return SandboxSettings(**self.settings)


def revealed(settings: Settings) -> dict[str, Any]:
    """The settings the runner set, as JSON values, secrets included (sent over the child's stdin only)."""
    def plain(v: Any) -> Any:
        if isinstance(v, SecretStr):
            return v.get_secret_value()
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [plain(x) for x in v]
        return str(v) if isinstance(v, Path) else v
    return {k: plain(v) for k, v in settings.model_dump().items() if k in settings.model_fields_set}


class ChildProcess:
    """The service in its own OS process: `kill()` is a real SIGKILL, and a new child resumes from the timeline.

    Children are spawned ahead of need (`warm`): the first while the world is seeded, a spare once it is, and
    while kills remain a new spare as soon as a child consumes, so a restart after a SIGKILL rarely waits for
    an interpreter start-up.
    """

    def __init__(self, work: Path, timeline: Path, clock: Callable[[], float], kills: int) -> None:
        self.work, self.timeline, self.clock, self.kills = work, timeline, clock, kills
        self.config: ChildConfig | None = None
        self.proc: asyncio.subprocess.Process | None = None
        self.spares: list[asyncio.subprocess.Process] = []
        self.last = Status()
        self.restarts = 0
        self._lock = asyncio.Lock()

    async def warm(self, count: int = 1) -> None:
        """Have `count` children spawned that import everything and wait for their configuration."""
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, *filter(None, [os.environ.get("PYTHONPATH")])])}
        while len(self.spares) < count:
            with (self.work / "child.log").open("ab") as log:
                self.spares.append(await lifeline.exec_async(  # dies with the runner, however it ends
                    sys.executable, "-m", "responder.tabletop.child", env=env,
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log))

    async def start(self) -> None:
        """Configure a warm child at the current virtual time (secrets go over its stdin, never to disk); return
        when its service consumes."""
        if self.config is None:
            raise RuntimeError("the service process has no configuration")
        config = self.config
        await self.warm()
        self.proc = self.spares.pop(0)
        config.now = self.clock()
        self.last = Status.model_validate(await self._ask("start", config=config.model_dump(mode="json")))
        while not self.last.ready:
            if not self.last.running:
                raise RuntimeError(f"the service process stopped: {self.last.error}")
            await asyncio.sleep(0.02)
            await self.status()
        if self.restarts < self.kills:  # another kill is coming: have its successor import now
            await self.warm(1)

    async def _ask(self, op: str, **args: Any) -> dict[str, Any]:
        proc = self.proc
        if proc is None or proc.stdin is None or proc.stdout is None:
            raise RuntimeError("the service process is not running")
        async with self._lock:
            try:
                proc.stdin.write(orjson.dumps({"op": op, **args}) + b"\n")
                await proc.stdin.drain()
            except (BrokenPipeError, ConnectionResetError):
                line = b""
            else:
                line = await proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the service process exited ({await proc.wait()}); see {self.work / 'child.log'}")
        reply: dict[str, Any] = orjson.loads(line)
        return reply

    async def at(self, offset: float) -> None:
        """Move the child's virtual clock."""
        await self._ask("at", offset=offset)

    async def status(self) -> Status:
        """Ask the child."""
        self.last = Status.model_validate(await self._ask("status"))
        return self.last

    def entries(self) -> list[TimelineEntry]:
        """The timeline as the child wrote it (a line torn by a SIGKILL ends the read)."""
        out: list[TimelineEntry] = []
        with contextlib.suppress(ChainBroken, OSError):
            out.extend(parse_lines(self.timeline.read_bytes().splitlines()))
        return out

    async def kill(self) -> dict[str, Any]:
        """SIGKILL the child (no drain, no commit, no close) and reap it: its pid, exit code and kill points."""
        if self.proc is None or self.config is None:
            raise RuntimeError("the service process is not running")
        pid = self.proc.pid
        self.proc.send_signal(signal.SIGKILL)
        code = await self.proc.wait()
        self.restarts += 1
        self.config.handled = sorted([*self.config.handled, *self.last.kills])  # each kill point used, once per kill
        return {"pid": pid, "signal": "SIGKILL", "returncode": code, "during": list(self.last.kills)}

    async def stop(self) -> Status:
        """Ask the child to drain and stop; SIGKILL it if it does not within 30 s."""
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(TimeoutError, RuntimeError):
                self.last = Status.model_validate(await asyncio.wait_for(self._ask("stop"), 30))
        for spare in self.spares:  # an unused spare exits at the end of its input
            if spare.stdin is not None:
                spare.stdin.close()
            await spare.wait()
        self.spares.clear()
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 10)
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()
        return self.last
