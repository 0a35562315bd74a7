"""Run one playbook: seed the world, run the real Service on a virtual clock, deliver injects, decisions, faults.

Time moves only when the runner moves it: between two scheduled moments the runner waits until the service
has *settled* (settle.py), and fails the scenario rather than move time past records not handled.

The service runs in this process, or (for a playbook with a kill fault) in a child process that a real
SIGKILL can kill (responder/tabletop/host.py); injects go to Kafka or through a real intake (webhook.py);
when each happens is the Schedule's business (schedule.py), and the service's settings service_settings.py's.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import structlog

from responder.actuators.aws.session import AwsSession
from responder.actuators.registry import registry
from responder.ingest.approvals import KafkaPublisher
from responder.ingest.kafka import ensure_topics
from responder.models.runbook import Runbook
from responder.sandbox import SANDBOX_CREDENTIALS, Sandbox
from responder.settings import Settings
from responder.tabletop.decisions import answer, index_of
from responder.tabletop.escalation import scenario_default, scenario_runbooks
from responder.tabletop.expectations import Expectation
from responder.tabletop.faults import FaultyAws, VirtualClock
from responder.tabletop.fired import KILL_AT
from responder.tabletop.host import ChildConfig, ChildProcess, InProcess, Status, revealed
from responder.tabletop.inject import Record, inject_records
from responder.tabletop.models import AwsFault, Decision, Inject, KillFault, Playbook
from responder.tabletop.outcome import Run, merge
from responder.tabletop.schedule import Schedule
from responder.tabletop.service_settings import scenario_topics, service_settings, uses_webhooks
from responder.tabletop.settle import Tally, settle
from responder.tabletop.state import snapshot
from responder.tabletop.webhook import WebhookIntake, webhook_intake
from responder.tabletop.world import seed

log = structlog.get_logger(__name__)


class Scenario:
    """One playbook against one (shared, reset) sandbox."""

    def __init__(self, pb: Playbook, path: Path, sandbox: Sandbox, runbooks: Sequence[Runbook], runbooks_dir: Path,
                 work: Path, signing_key: str, progress: Callable[[str, str], None] | None = None,
                 judge: Callable[[Expectation, Run], Awaitable[bool]] | None = None,
                 default_on_failure: Sequence[Mapping[str, Any]] = ()) -> None:
        # the service's default_on_failure, as `responder run` (none if the playbook says so), and who gets it
        self.default_on_failure = scenario_default(pb, default_on_failure)
        self.runbooks, defaulted = scenario_runbooks(pb, runbooks, default_on_failure, registry)
        self.pb, self.sandbox, self.runbooks_dir = pb, sandbox, runbooks_dir
        self.work = work
        self.signing_key = signing_key
        self.progress = progress or (lambda _kind, _msg: None)
        self.judge = judge or _never
        self.intake: WebhookIntake | None = None
        self.webhooks = uses_webhooks(pb)
        self.run_state = Run(pb, path, work / "timeline.jsonl", defaulted=defaulted)
        self.topics = scenario_topics(pb, uuid.uuid4().hex[:8])
        self.clock = VirtualClock(float(int(time.time())))
        self.tally = Tally()

    def settings(self) -> Settings:
        """The service's settings (responder/tabletop/service_settings.py)."""
        return service_settings(self.pb, self.run_state, self.sandbox, self.topics, runbooks_dir=self.runbooks_dir,
                                work=self.work, signing_key=self.signing_key,
                                default_on_failure=self.default_on_failure)

    async def run(self) -> Run:
        """Seed, run, tear down; a scenario past its deadline is stopped and reported failed."""
        started = time.monotonic()
        rs = self.run_state
        self.sandbox.aws.reset()
        # the runner's own calls (seeding, snapshots, state checks) go through a session without faults: a fault
        # fires only on the service's calls, and only those use up its `times` (fired.py grades what fired)
        rs.aws = own = AwsSession(endpoint_url=self.sandbox.aws.endpoint_url, credentials=SANDBOX_CREDENTIALS)
        aws = FaultyAws(endpoint_url=self.sandbox.aws.endpoint_url, credentials=SANDBOX_CREDENTIALS,
                        clock=self.clock, faults=[f for f in self.pb.faults if isinstance(f, AwsFault)],
                        loop=asyncio.get_running_loop())  # kill points are armed in the service's own process
        rs.start = self.clock.start
        kills = sum(isinstance(f, KillFault) for f in self.pb.faults)
        self.child = ChildProcess(self.work, rs.timeline, self.clock, kills) if kills else None
        try:
            async with asyncio.timeout(self.pb.timeout):
                if self.child is not None:
                    await self.child.warm(1)  # its imports overlap the seeding
                rs.bindings = await seed(own, self.pb.world, self.work)
                if self.child is not None:  # a spare for the first restart (not earlier: moto's first calls
                    await self.child.warm(2)  # are slow, and two importing interpreters starve a small machine)
                rs.before = await snapshot(own, rs.bindings)
                self.progress("setup", "world seeded")
                await ensure_topics(self.sandbox.broker.bootstrap, list(self.topics.values()), partitions=1)
                await self._drive(aws)
                rs.after = await snapshot(own, rs.bindings)
        except TimeoutError:
            rs.error = f"stopped at its deadline of {self.pb.timeout:g} s (wall); the scenario hung"
        except Exception as exc:  # a broken scenario is a failed scenario, reported with why
            log.exception("tabletop_scenario_failed", playbook=self.pb.id)
            rs.error = f"{exc.__class__.__name__}: {exc}"
        finally:
            if self.child is not None:
                await self.child.stop()  # idempotent: also reaps a spare or a child left by a hung scenario
        # in process the service uses `aws` (its status already listed them); a child had its own, and `aws` none
        rs.faults = rs.faults if self.child is not None else list(aws.injected)
        rs.end = self.clock.offset
        rs.wall = time.monotonic() - started
        return rs

    def _schedule(self) -> Schedule:
        rs = self.run_state

        def records(inject: Inject, offset: float) -> list[tuple[float, Record]]:
            return inject_records(inject, rs.path.parent, rs.bindings, self.clock.start + offset, self.topics,
                                  self.pb.settings.event_signing_keys)
        schedule = Schedule(self.pb, records, self._deliver_factory, self._decide_factory, self._kill_now)
        rs.inject_at = schedule.inject_at
        return schedule

    async def _check_awaited(self, schedule: Schedule, status: Status) -> None:
        """Release the injects anchored on expectations that are met now (graded on the timeline so far)."""
        first = self.pb.injects[0].id
        by_id = {e.id: e for e in self.pb.expectations}
        awaited = [by_id[n] for n in schedule.awaited() if (by_id[n].after or first) in schedule.inject_at]
        if not awaited:
            return
        view = replace(self.run_state, entries=self.host.entries(),
                       deadlettered=merge(self.run_state.deadlettered, status.deadlettered))
        for exp in awaited:
            if await self.judge(exp, view):
                self.progress("expect", f"{exp.id} met at t+{self.clock.offset:g}s: releasing what waits on it")
                schedule.meet(exp.id, self.clock.offset)

    def _deliver_factory(self, inject: Inject, record: Record) -> Callable[[], Awaitable[None]]:
        async def deliver() -> None:
            seen: dict[str, Any] = {"inject": inject.id, "at": self.clock.offset, "transport": inject.transport}
            if inject.transport == "webhook" and self.intake is not None:
                posted = await self.intake.post(inject.auth, record.value, inject.signature)
                seen |= {"auth": inject.auth.value, "http_status": posted.status}
                produced = posted.produced  # a redelivery the intake recognised is acknowledged, not produced
            else:
                await self.producer.publish(record.topic, record.key or b"", record.value, record.headers)
                produced = int(record.topic in (self.topics["alerts"], self.topics["drift"]))
            self.tally.delivered += produced
            self.run_state.deliveries.append(seen | {"produced": produced})
            via = f"webhook {inject.auth.value} → HTTP {seen['http_status']}" if "http_status" in seen else "kafka"
            self.progress("inject", f"{inject.id} at t+{self.clock.offset:g}s via {via}")
            if produced:
                self.run_state.first_inject_wall = self.run_state.first_inject_wall or time.time()
        return deliver

    def _decide_factory(self, decision: Decision) -> Callable[[], Awaitable[None]]:
        async def decide() -> None:
            got = answer(decision, self.pb, self.host.entries(), self.run_state.bindings, self.clock(),
                         self.topics["approvals"])
            if isinstance(got, str):  # graded a must-pass FAIL (decisions.py): never silently dropped
                self.run_state.unanswered[index_of(self.pb, decision)] = got
                self.progress("decision", got)
                return
            await self.producer.publish(got.topic, got.key or b"", got.value, got.headers)
            self.tally.decided = True
        return decide

    async def _drive(self, aws: FaultyAws) -> None:
        schedule = self._schedule()
        async with contextlib.AsyncExitStack() as stack:
            self.producer = KafkaPublisher(self.sandbox.broker.bootstrap)
            await self.producer.start()
            stack.push_async_callback(self.producer.stop)
            if self.webhooks:
                self.intake = await stack.enter_async_context(
                    webhook_intake(self.sandbox.broker.bootstrap, self.topics["alerts"]))
            self.host = self._host(self.settings(), aws)
            await self._play(schedule)

    async def _play(self, schedule: Schedule) -> None:
        try:
            await self.host.start()
            self.progress("setup", "service ready")
            while (item := schedule.pop()) is not None:
                offset, action = item
                await self.host.at(offset)
                self.clock.at(offset)
                self.progress("clock", f"t+{offset:g}s")
                await action()
                settled = await settle(self.host, self.tally, self._kill_and_restart, self.clock.offset)
                await self._check_awaited(schedule, settled)
            self.run_state.undelivered = schedule.undelivered()
        finally:
            await self._stop_service()

    def _host(self, settings: Settings, aws: FaultyAws) -> InProcess | ChildProcess:
        """A scenario with a kill fault runs its service in a child process (a real SIGKILL); others in process."""
        if self.child is None:
            return InProcess(settings, aws, self.clock)
        self.child.config = ChildConfig(settings=revealed(settings), faults=list(self.pb.faults),
                                        start=self.clock.start, now=self.clock())
        return self.child

    def _account(self, status: Status) -> None:
        rs = self.run_state
        rs.deadlettered = merge(rs.deadlettered, status.deadlettered)
        rs.faults += status.injected
        if status.first_action_wall is not None and rs.first_action_wall is None:
            rs.first_action_wall = status.first_action_wall

    async def _stop_service(self) -> None:
        self._account(await self.host.stop())
        self.run_state.entries = self.host.entries()

    async def _kill_now(self) -> None:
        """A `kill_at` fault: SIGKILL the service whatever it is doing, and restart it."""
        await self._kill_and_restart(await self.host.status(), KILL_AT)

    async def _kill_and_restart(self, status: Status, why: str = "") -> None:
        """A real SIGKILL of the service process (no drain, no commit of the chunk in hand); a new process resumes
        from the timeline and the uncommitted Kafka offsets."""
        if not isinstance(self.host, ChildProcess):  # kill points are armed only in a child process
            raise RuntimeError("a kill point was reached in a service that is not in its own process")
        self.tally.base += status.handled  # committed; every other record polled is redelivered to the new process
        self._account(status)
        killed = await self.host.kill()
        killed["during"] = killed["during"] or [why]
        self.run_state.kills.append({"at": self.clock.offset, **killed})
        self.run_state.restarts += 1
        self.progress("fault", f"service pid {killed['pid']} SIGKILLed during {', '.join(killed['during'])} "
                      f"(exit {killed['returncode']}); restarting")
        await self.host.start()


async def _never(_exp: Expectation, _run: Run) -> bool:
    return False
