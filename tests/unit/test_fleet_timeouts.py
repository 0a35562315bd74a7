"""In a fleet, approval timeouts and the steps a crash cut short after their release run under the exclusive gate
(they may act, and must not while a revocation hands their partition over); the gate is taken only when one is due."""

from __future__ import annotations

import asyncio

from responder.service import Service
from responder.settings import Settings
from tests.fleet_kit import fleet_service, parked_uncounted
from tests.kit import chunk_in_hand


def _watch(svc: Service, due: bool) -> list[bool]:
    """Make `expire` note whether it ran with the gate held exclusively, and `due` say `due`."""
    seen: list[bool] = []

    async def expire() -> int:
        seen.append(svc._lock._writer)
        return 0

    svc.engine.expire = expire  # type: ignore[method-assign]
    svc.engine.decisions.due = lambda: due  # type: ignore[method-assign]
    return seen


async def _closed(svc: Service) -> None:
    svc.recorder.close()
    await svc.close_unstarted()


async def test_a_fleet_replica_expires_under_the_gate_after_the_chunks_in_hand(tmp_path):
    """With something due, `_expire` waits for a lane's chunk in hand, then runs holding the gate exclusively."""
    svc = fleet_service(tmp_path)
    seen = _watch(svc, due=True)
    chunk, done = await chunk_in_hand(svc._lock)
    expiring = asyncio.create_task(svc._expire())
    for _ in range(20):
        await asyncio.sleep(0)
    assert seen == []  # waits for the chunk in hand
    done.set()
    await asyncio.gather(chunk, expiring)
    assert seen == [True]
    await _closed(svc)


async def test_a_fleet_replica_takes_no_gate_when_nothing_is_due(tmp_path):
    """Nothing due: no gate is taken (the lanes are not stalled every 200 ms)."""
    svc = fleet_service(tmp_path)
    seen = _watch(svc, due=False)
    await svc._expire()
    assert seen == []
    await _closed(svc)


async def test_a_single_replica_expires_without_the_gate(tmp_path):
    """Outside a fleet nothing moves between replicas: `expire` runs as before, without the gate."""
    svc = Service(Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", topics=["a"],
                           runbooks_dir=tmp_path), runbooks=[])
    seen = _watch(svc, due=False)
    await svc._expire()
    assert seen == [False]
    await _closed(svc)


async def test_something_is_due_once_a_deadline_passes_or_a_released_step_waits(tmp_path):
    """`Decisions.due`: a parked step before its deadline is not due; past it, or released and cut short, it is."""
    kit = await parked_uncounted(tmp_path)
    decisions = kit.engine.decisions
    [parked] = kit.engine.state.parked_steps()
    assert not decisions.due()
    kit.clock.now = parked.deadline
    assert decisions.due()
    kit.clock.now = parked.deadline - 1
    kit.engine.state.grant(parked)
    assert decisions.due()
