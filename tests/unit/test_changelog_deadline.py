"""A changelog write outside transactions has one total deadline, from its call across its resends (its partition's
lock included), and a flush shares one across the partitions it writes one after another: a broker that stays down
fails the write (ChangelogWriteTimedOut, which fails the changelog barrier and stops the service) well before the
group would drop the replica (responder/ingest/changelog.py, responder/fleet.py, docs/fleet.md)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError

from responder.engine.snapshot import EngineSnapshot
from responder.errors_kafka import ChangelogWriteTimedOut
from responder.fleet import FleetState
from responder.ingest.changelog import Changelog
from tests.fakes import MetadataClient
from tests.fleet_kit import durable_entry
from tests.kit import WIPE, make_kit
from tests.txn_kit import changelog_sending_with as with_producer

DEADLINE = 0.3


class _DownBroker:
    """A producer whose broker is down: an ack of partition in `hung` never comes; the others fail transiently
    (an expired batch) when `failing`, else are acknowledged after `delay` seconds."""

    def __init__(self, *, hung: frozenset[int] = frozenset(), failing: bool = False, delay: float = 0.0) -> None:
        self.hung, self.failing, self.delay = set(hung), failing, delay
        self.client, self.sent = MetadataClient(), list[int]()

    async def send(self, topic: str, value: bytes | None, *, key: bytes, partition: int) -> asyncio.Future[Any]:
        self.sent.append(partition)
        ack: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.failing:
            ack.set_exception(KafkaTimeoutError())
        elif partition not in self.hung:
            asyncio.get_running_loop().call_later(self.delay, ack.set_result, None)
        return ack

    async def stop(self) -> None: ...


async def _changelog(producer: _DownBroker) -> Changelog:
    changelog = await with_producer(producer)  # type: ignore[arg-type]
    changelog.write_deadline = DEADLINE
    return changelog


@pytest.mark.parametrize("broker", [_DownBroker(hung={0}), _DownBroker(failing=True)], ids=["no-ack", "resends"])
async def test_a_write_to_a_down_broker_fails_once_its_deadline_passed(broker: _DownBroker) -> None:
    """A changelog write to a down broker raises ChangelogWriteTimedOut at its own deadline, not aiokafka's expiry."""
    changelog = await _changelog(broker)
    started = asyncio.get_running_loop().time()
    async with asyncio.timeout(5):
        with pytest.raises(ChangelogWriteTimedOut, match=r"changelog\[0\]"):
            await changelog.write(0, {"inc-1": EngineSnapshot()})
    assert asyncio.get_running_loop().time() - started < DEADLINE + 0.5


async def test_waiting_for_the_partitions_lock_counts_against_the_deadline() -> None:
    """A write queued behind another write of its partition that hangs fails at its own deadline, from its call."""
    changelog = await _changelog(_DownBroker(hung={0}))
    changelog.write_deadline = 10 * DEADLINE
    first = asyncio.create_task(changelog.write(0, {"inc-1": EngineSnapshot()}))
    await asyncio.sleep(0.05)
    changelog.write_deadline = DEADLINE
    async with asyncio.timeout(5):
        with pytest.raises(ChangelogWriteTimedOut):
            await changelog.write(0, {"inc-2": EngineSnapshot()})
    assert not first.done()
    first.cancel()


async def test_a_flush_shares_one_deadline_across_its_partitions(tmp_path: Path) -> None:
    """A flush writing several partitions fails at one shared deadline, not one deadline per partition."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny"})
    deadline = 1.0  # not DEADLINE: 0.5 s of slack for a loop delayed on a loaded machine (3 xdist workers, 2 cores)
    broker = _DownBroker(hung={1}, delay=deadline * 0.7)
    fleet = FleetState(kit.engine, await _changelog(broker))
    fleet.changelog.write_deadline = deadline  # a deadline per partition would fail at 1.7 s
    fleet.owned |= {0, 1}
    entries = [durable_entry("event.received", "e0", partition=0),
               durable_entry("incident.opened", "e0", "i0", partition=0),
               durable_entry("event.received", "e1", partition=1),
               durable_entry("incident.opened", "e1", "i1", partition=1)]
    started = asyncio.get_running_loop().time()
    async with asyncio.timeout(5):
        with pytest.raises(ChangelogWriteTimedOut, match=r"changelog\[1\]"):
            await fleet.on_durable(entries)
    assert asyncio.get_running_loop().time() - started < deadline + 0.5
    assert (broker.sent[0], broker.sent[-1]) == (0, 1)  # partition 0 written (slowly), then 1 (hung)
