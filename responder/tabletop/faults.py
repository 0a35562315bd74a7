"""The virtual clock, and AWS faults injected with botocore `before-call` hooks on the service's own session.

Why hooks and not a proxy: a `before-call` handler that returns a response short-circuits the HTTP
request inside botocore, so the actuator sees exactly what a throttled or failing AWS API returns
(a ClientError with the real error code and HTTP status), on the real code path, with no port to
manage. A kill fault (armed only in a service running in its own process, responder/tabletop/child.py)
blocks the calling thread instead and says so in the child's status: the runner then SIGKILLs the
process (the call never reaches AWS, nothing is committed) and starts a new one.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

from responder.actuators.aws.session import AwsSession
from responder.tabletop.models import AwsFault, KillFault


class VirtualClock:
    """Seconds since the epoch that move only when the runner says so."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.now = start

    def __call__(self) -> float:
        return self.now

    def at(self, offset: float) -> None:
        """Move to `start + offset` (never backwards)."""
        self.now = max(self.now, self.start + offset)

    @property
    def offset(self) -> float:
        """Virtual seconds since the start."""
        return self.now - self.start


class _Response:
    """The part of an HTTP response botocore reads after a short-circuited call."""

    def __init__(self, status: int) -> None:
        self.status_code = status
        self.headers: dict[str, str] = {}
        self.content = b""
        self.text = ""


class KillSwitch:
    """A kill fault: the first matching call parks its thread until the runner has SIGKILLed the process."""

    def __init__(self, operation: str, loop: asyncio.AbstractEventLoop) -> None:
        self.operation = operation
        self.loop = loop
        self.reached = asyncio.Event()
        self.fired = False
        self._release = threading.Event()

    def hit(self) -> None:
        """Called in the botocore thread: tell the runner, then wait to be released (the call then fails)."""
        self.fired = True
        self.loop.call_soon_threadsafe(self.reached.set)
        self._release.wait(30)
        raise ConnectionError("tabletop: the service was killed during this call")

    def release(self) -> None:
        """Let the parked thread finish (its result goes nowhere: its service is gone)."""
        self._release.set()


class FaultyAws(AwsSession):
    """The service's AwsSession with faults: errors for a span of virtual time, or a kill point."""

    def __init__(self, *, endpoint_url: str, credentials: dict[str, str], clock: VirtualClock,
                 faults: Sequence[AwsFault | KillFault], loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(endpoint_url=endpoint_url, credentials=credentials)
        self.clock = clock
        self.errors = [f for f in faults if isinstance(f, AwsFault)]
        self.kills = [KillSwitch(f.kill_during, loop) for f in faults
                      if isinstance(f, KillFault) and f.kill_during is not None]
        self.injected: list[dict[str, Any]] = []
        self._session.events.register("before-call", self._before_call)  # type: ignore[arg-type]

    def _before_call(self, model: Any, **_: Any) -> tuple[_Response, dict[str, Any]] | None:
        op, service = model.name, model.service_model.service_name
        for kill in self.kills:
            if kill.operation == op and not kill.fired:
                kill.hit()
        for n, fault in enumerate(self.errors):  # `fault`: its place among the playbook's AWS faults (fired.py)
            spent = sum(1 for i in self.injected if i["fault"] == n)
            if fault.operation == op and fault.service == service and fault.start <= self.clock.offset < fault.end \
                    and (fault.times is None or spent < fault.times):
                status, code = (400, "Throttling") if fault.error == "throttle" else (503, "ServiceUnavailable")
                self.injected.append({"at": self.clock.offset, "service": service, "operation": op, "code": code,
                                      "fault": n})
                return _Response(status), {"Error": {"Code": code, "Message": "tabletop fault"},
                                           "ResponseMetadata": {"HTTPStatusCode": status}}
        return None


def armed(faults: Sequence[AwsFault | KillFault], handled: Sequence[str]) -> list[AwsFault | KillFault]:
    """The faults a restarted service arms: all but one `kill_during` fault on an operation per kill during it so far
    (`handled`), so a second `kill_during` on the same operation waits for the next call."""
    used = list(handled)
    out: list[AwsFault | KillFault] = []
    for fault in faults:
        if isinstance(fault, KillFault) and fault.kill_during in used:
            used.remove(fault.kill_during)
            continue
        out.append(fault)
    return out
