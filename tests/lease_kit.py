"""What the membership lease's tests drive (responder/ingest/lease.py): a clock the test moves, and aiokafka's group
coordinator with its own heartbeat code (`GroupCoordinator._do_heartbeat`) over requests the test answers."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from aiokafka.consumer.group_coordinator import GroupCoordinator
from aiokafka.errors import KafkaConnectionError

# Kafka's error codes, as a coordinator answers a heartbeat
NONE, LOADING, NOT_AVAILABLE, NOT_COORDINATOR, ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID = 0, 14, 15, 16, 22, 25
REBALANCING, GROUP_AUTHORIZATION, UNHEARD_OF = 27, 30, 999


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Coordinator:
    """aiokafka's GroupCoordinator as far as the lease sees it: aiokafka's own `_do_heartbeat` over requests that take
    `rtt` s and are answered with `code` (None: not answered, the connection lost), its member id and generation."""

    _do_heartbeat = GroupCoordinator._do_heartbeat

    def __init__(self, clock: Clock, generation: int = 1) -> None:
        self.clock, self.rtt, self.code = clock, 0.0, NONE
        self.group_id, self.generation, self.member_id, self.coordinator_id = "g", generation, "member-1", 0
        self.sent: list[str] = []
        self.hold: asyncio.Event | None = None  # set: a request waits for it (an answer that is slow to come)

    async def _send_req(self, request: Any) -> Any:
        self.sent.append(type(request).__name__)
        if self.hold is not None:
            await self.hold.wait()
        self.clock.now += self.rtt
        if self.code is None:
            raise KafkaConnectionError("cut off")
        return SimpleNamespace(error_code=self.code)

    def request_rejoin(self) -> None:
        """aiokafka's: a rejoin is asked for (nothing to do here)."""

    def coordinator_dead(self) -> None:
        """aiokafka's: the coordinator is looked for again (nothing to do here)."""

    def reset_generation(self) -> None:
        """aiokafka's: the group said this is no member."""
        self.generation, self.member_id = -1, ""


class Consumer:
    """An aiokafka consumer as far as the lease sees it: its group coordinator."""

    def __init__(self, clock: Clock, generation: int = 1) -> None:
        self._coordinator: Coordinator | None = Coordinator(clock, generation)


class StartingConsumer(Consumer):
    """A consumer started as aiokafka 0.14 starts a subscribed one: its coordinator made in `start()`, which waits for
    the first assignment (the listener's callback runs inside it); `stop()` leaves the group."""

    def __init__(self, clock: Clock, generation: int) -> None:
        super().__init__(clock, generation)
        self.made, self._coordinator = self._coordinator, None
        self.listener: Any = None

    def subscribe(self, topics: Any, listener: Any) -> None:
        self.listener = listener

    async def start(self) -> None:
        self._coordinator = self.made
        await self.listener.on_partitions_assigned([])

    async def stop(self) -> None:
        assert self.made is not None
        self.made.reset_generation()  # LeaveGroup, then aiokafka's reset_generation


async def beat(coordinator: Coordinator | None) -> bool:
    """One heartbeat as aiokafka's heartbeat routine sends it (through the lease's wrapper)."""
    assert coordinator is not None
    return bool(await coordinator._do_heartbeat())
