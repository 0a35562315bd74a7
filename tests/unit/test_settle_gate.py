"""In a fleet, a step released by a decision, an `on_timeout` or a re-check settles its read-back with the gate let
down to its shared side: every partition's lanes go on while it waits, and a rebalance still waits for it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from responder.actuators.retry import settle_verify
from responder.ingest.gate import Gate
from responder.models.event import RawRecord
from responder.service import Service
from responder.service.parts import acting
from tests.fakes import Lagging
from tests.fleet_kit import Held, fleet_service
from tests.kit import DEACTIVATE_STEPS, decision, make_kit

APPROVED_DEACTIVATE = DEACTIVATE_STEPS + "    approval: {required: true}\n"


async def _lane_goes_on(gate: Gate) -> bool:
    """Whether a lane (another partition's chunk) takes the gate's shared side within a few loop turns."""
    lane = asyncio.create_task(_in_and_out(gate))
    for _ in range(50):
        await asyncio.sleep(0)
        if lane.done():
            return True
    lane.cancel()
    return False


async def _in_and_out(gate: Gate) -> None:
    async with gate.shared():
        pass


def _settling(held: Held) -> Callable[[], Awaitable[int]]:
    """Work that settles a read-back false until `held` goes (then true): a released step's, without an engine."""
    answers = iter([True])

    async def work() -> int:
        await settle_verify(lambda: _next(answers), held.settle())
        return 1

    return work


async def _next(answers: object) -> bool:
    return next(answers, False)  # type: ignore[call-overload,no-any-return]


async def _closed(svc: Service) -> None:
    svc.recorder.close()
    await svc.close_unstarted()


async def test_a_downgraded_holder_lets_lanes_in_and_a_writer_still_waits_for_it():
    """`Gate.downgrade`: lanes go in beside the holder; another exclusive holder waits until the holder's block ends."""
    gate, order = Gate(), []
    release = asyncio.Event()

    async def holder() -> None:
        async with gate:
            await gate.downgrade()
            await gate.downgrade()  # again: nothing
            await release.wait()
            order.append("holder out")

    async def writer() -> None:
        async with gate:
            order.append("writer")

    task = asyncio.create_task(holder())
    await asyncio.sleep(0)
    assert await _lane_goes_on(gate)
    w = asyncio.create_task(writer())
    for _ in range(20):
        await asyncio.sleep(0)
    assert order == []
    release.set()
    await asyncio.gather(task, w)
    assert order == ["holder out", "writer"]
    assert await _lane_goes_on(gate)  # nothing left held


async def test_a_timed_out_step_settling_in_a_fleet_lets_the_other_partitions_lanes_go_on(tmp_path):
    """In a fleet, `_expire` lets the lanes in while its released step settles, holding the gate's shared side."""
    svc, held = fleet_service(tmp_path), Held()
    svc.engine.decisions.due = lambda: True  # type: ignore[method-assign]
    svc.engine.expire = _settling(held)  # type: ignore[method-assign]
    assert await _lane_goes_on(svc._lock)
    expiring = asyncio.create_task(svc._expire())
    await held.waiting.wait()
    assert await _lane_goes_on(svc._lock)
    revoking = asyncio.create_task(_exclusive(svc._lock))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not revoking.done()  # a rebalance still waits for the settling step
    held.go.set()
    await asyncio.gather(expiring, revoking)
    await _closed(svc)


async def _exclusive(gate: Gate) -> None:
    async with gate:
        pass


async def test_a_decision_whose_step_settles_in_a_fleet_lets_the_lanes_go_on(tmp_path):
    """In a fleet, a decision applied by `_decide` lets the lanes in while its step's read-back settles."""
    svc, held = fleet_service(tmp_path), Held()
    assert svc.fleet is not None
    settle = _settling(held)

    async def decide(value: bytes, key_id: str | None, sig: str | None, *, replayed: bool = False) -> None:
        await settle()

    svc.fleet.decide = decide  # type: ignore[method-assign]
    await _lanes_go_on_while(svc, held, svc._decide(RawRecord(topic="approvals", value=b"{}")))


async def test_a_step_taken_up_again_settling_in_a_fleet_lets_the_lanes_go_on(tmp_path):
    """`_recheck` of a step parked for an uncounted quota lets the lanes in while its step's read-back settles."""
    svc, held = fleet_service(tmp_path), Held()
    settle = _settling(held)

    async def recheck(parked: object) -> int:
        return await settle()

    svc.engine.decisions.recheck = recheck  # type: ignore[method-assign,assignment]
    svc.engine.decisions.uncounted = lambda: ["a"]  # type: ignore[method-assign,list-item,return-value]
    await _lanes_go_on_while(svc, held, svc._recheck())


async def _lanes_go_on_while(svc: Service, held: Held, work: Awaitable[None]) -> None:
    """Run `work` until its settle waits, check a lane goes on then, let it finish; close the service."""
    running = asyncio.ensure_future(work)
    await held.waiting.wait()
    assert await _lane_goes_on(svc._lock)
    held.go.set()
    await running
    await _closed(svc)


async def test_the_lanes_go_on_while_an_approved_step_settles_and_its_result_is_recorded_once_in_order(tmp_path):
    """An approved deactivation whose read-back lags lets a lane in while it waits, then records its result once."""
    held = Held()
    kit = make_kit(tmp_path, {"rb": APPROVED_DEACTIVATE}, settle=held.settle())
    lag = Lagging(kit.iam.call, stale=1)
    kit.iam.call = lag.call  # type: ignore[method-assign]
    await kit.send()
    [parked] = kit.engine.state.parked_steps()
    gate = Gate()

    async def decide() -> None:
        async with acting(gate):
            assert await kit.engine.decide(*decision(kit, parked.incident, parked.step))

    deciding = asyncio.create_task(decide())
    await held.waiting.wait()
    assert await _lane_goes_on(gate)
    assert kit.engine.state.result(parked_key(kit)) is None  # not recorded while it settles
    held.go.set()
    await deciding
    await kit.engine.recorder.flush()
    [result] = kit.entries("step.result")
    assert (result["status"], result["verified"], result["verify_reads"]) == ("ok", True, 2)
    kinds = kit.kinds()
    assert kinds.index("approval.decided") < kinds.index("step.intent") < kinds.index("step.result")
    assert kinds.index("step.result") < kinds.index("approval.settled")
    assert await _lane_goes_on(gate)


def parked_key(kit: object) -> str:
    """The deactivation's idempotency key (the one step of the runbook)."""
    [intent] = kit.entries("step.intent")  # type: ignore[attr-defined]
    return str(intent["key"])


async def test_a_settle_outside_a_fleet_gate_needs_no_hook(tmp_path: Path):
    """A settle with no `acting` around it (a lane's, a single replica's) waits as before."""
    held = Held()
    held.go.set()
    assert await _settling(held)() == 1
    assert held.waits.waited == [0.5]
