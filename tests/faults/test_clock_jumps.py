"""Clock jumps of ±1 h while the service runs: quota windows and approval deadlines do not misfire.

The engine is driven through its public entry points (the pipeline, Engine.expire/decide) on the clock the
Service gives it (responder.clock.SteadyClock), over a wall clock that jumps and a monotonic clock that does not.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from responder.clock import SteadyClock
from responder.service import Service
from responder.settings import Settings
from tests.faults.table import FaultRow, record
from tests.kit import make_kit

HOUR = 3600.0
ECHO = """\
guards: {quotas: [{actuator: test.echo, max: 1, window: 1h}]}
steps:
  - id: note
    actuator: test.echo
    with: {target: "${event.resource.access_key.attributes.user_name}", message: hi}
"""
WIPE = """\
steps:
  - id: wipe
    actuator: test.wipe
    with: {target: t1}
    approval: {approvers: [alice], timeout: 10m, on_timeout: deny}
"""


class Host:
    """A host's two clocks: the wall clock (which NTP or an operator can step) and the monotonic one."""

    def __init__(self) -> None:
        self.wall_now, self.mono_now = 1_800_000_000.0, 1000.0

    def wall(self) -> float:
        return self.wall_now

    def mono(self) -> float:
        return self.mono_now

    def elapse(self, seconds: float) -> None:
        """Real time passes: both clocks move."""
        self.wall_now += seconds
        self.mono_now += seconds

    def jump(self, seconds: float) -> None:
        """The wall clock is stepped; no time passes."""
        self.wall_now += seconds


def _kit(tmp_path, runbooks):
    host = Host()
    kit = make_kit(tmp_path, runbooks)
    kit.clock = SteadyClock(host.wall, host.mono)  # type: ignore[assignment]  # the Service's clock, over `host`
    kit.start()
    return kit, host


async def test_quota_window_ignores_wall_clock_jumps(tmp_path):
    """A +1 h jump does not end a 1 h quota window early; a -1 h jump does not hold it an hour longer."""
    kit, host = _kit(tmp_path, {"rb": ECHO})
    await kit.send(key="AKIAABCDEFGHIJKLMNO1", user="user-1")
    host.jump(+HOUR)
    host.elapse(1)
    await kit.send(key="AKIAABCDEFGHIJKLMNO2", user="user-2")  # 1 s after the first: the quota holds
    host.jump(-2 * HOUR)
    host.elapse(HOUR)
    await kit.send(key="AKIAABCDEFGHIJKLMNO3", user="user-3")  # an hour really passed: the quota allows it
    assert [p.target for p in kit.echo.applied] == ["user-1", "user-3"]
    assert [t["target"] for t in kit.entries("guard.tripped")] == ["user-2"]
    record(FaultRow(fault="clock: +1 h then -2 h around a 1 h quota", events=3, expected=2,
                    done=len(kit.echo.applied), duplicates=0, lost=2 - len(kit.echo.applied),
                    note="quota held across +1 h, freed after 1 h of real time"))


async def test_approval_deadline_ignores_wall_clock_jumps(tmp_path):
    """A parked step's 10 min deadline neither expires on a +1 h jump nor outlives 10 real minutes after -1 h."""
    kit, host = _kit(tmp_path, {"rb": WIPE})
    await kit.send()
    host.jump(+HOUR)
    assert await kit.engine.expire() == 0
    host.jump(-2 * HOUR)
    host.elapse(601)
    assert await kit.engine.expire() == 1
    assert [r["status"] for r in kit.entries("step.result")] == ["denied"]
    assert kit.wipe.applied == []
    record(FaultRow(fault="clock: +1 h / -1 h around a 10 min approval deadline", events=1, expected=0, done=0,
                    duplicates=0, lost=0, note="expired after 601 s of real time, not on the jump"))


async def test_a_decision_that_expired_stays_expired_after_a_backward_jump(tmp_path):
    """A signed decision whose expiry has passed is not made valid again by stepping the wall clock back 1 h."""
    from tests.kit import decision

    kit, host = _kit(tmp_path, {"rb": WIPE})
    await kit.send()
    incident = next(iter(kit.engine.state.incidents.by_id))
    stale = decision(kit, incident, "wipe", ttl=60)
    host.elapse(120)
    host.jump(-HOUR)
    assert not await kit.engine.decide(*stale)
    assert kit.wipe.applied == []


async def test_the_service_runs_its_engine_on_one_steady_clock(tmp_path):
    """Service wires SteadyClock into the engine and the recorder by default (so every window above is on it)."""
    service = Service(Settings(kafka_bootstrap="127.0.0.1:9", timeline_path=tmp_path / "t.jsonl"))
    assert isinstance(service.engine.clock, SteadyClock)
    assert service.recorder.clock is service.engine.clock
    now = datetime.now(UTC).timestamp()
    assert abs(service.engine.clock() - now) < 5
    assert datetime.fromtimestamp(service.engine.clock(), UTC) < datetime.now(UTC) + timedelta(seconds=5)
    service.recorder.close()
    await service.close_unstarted()
