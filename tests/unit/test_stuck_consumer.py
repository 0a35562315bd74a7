"""A consumer out of its group for longer than a start may take (its coordinator unknown, or its group not joined),
while aiokafka's coordination task goes on looking rather than dying, is rebuilt again within the same budget
(responder/service/watch.py `_watched`, responder/ingest/lost.py): never a 503 for ever."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import TopicPartition
from structlog.testing import capture_logs

from responder.errors_kafka import ConsumerRebuildsExhausted, CoordinatorLost
from responder.ingest.coordinator import RebuildBudget, commit_unless_dead
from responder.ingest.lost import abandon
from responder.service import Service
from tests.consumer_kit import FakeBroker, GroupConsumer, JoinedConsumer, MovingClock, alerts_over, stop_when
from tests.rebuild_kit import (
    LosingConsumer,
    LosingInCommit,
    operator_over,
    rebuilding_errors,
    rebuilds,
    service_budget,
)


async def test_a_rebuilt_operator_consumer_that_never_finds_its_coordinator_is_rebuilt_again(tmp_path) -> None:
    """A rebuilt consumer whose task looks in vain for ever is rebuilt again past the bound; the next settles."""
    clock, broker = MovingClock(), FakeBroker(records=0)
    built: list[JoinedConsumer] = []

    # the first's task dies; the rebuilt one looks for its coordinator for ever; the next finds it
    def one() -> JoinedConsumer:
        built.append(JoinedConsumer(broker, clock, dies_after=3 if not built else 0, found=len(built) != 1))
        return built[-1]

    def settled(service: Service) -> bool:
        return clock.now > 100 + 5000 or (len(built) > 2 and built[2].polls > 2 and service.unready() is None)

    with capture_logs() as logs:
        service = await operator_over(tmp_path, one, clock, until=99, done=settled)
    assert rebuilds(service, "operator") == 2
    assert "CoordinatorLost: not settled within 160 s of its rebuild: its group coordinator unknown for 170 s" in (
        rebuilding_errors(logs)[1])
    assert service._rebuilding_why() is None  # settled


async def test_an_operator_consumer_whose_coordinator_never_comes_back_ends_in_exit_75(tmp_path) -> None:
    """A consumer that never finds its coordinator, its task never dying, is rebuilt 5 times, then the service stops."""
    clock, broker = MovingClock(), FakeBroker(records=0)
    with pytest.raises(ConsumerRebuildsExhausted, match="operator consumer was rebuilt 5 times within 950 s") as got:
        await operator_over(tmp_path, lambda: JoinedConsumer(broker, clock, dies_after=0, found=False), clock, until=99,
                             budget=service_budget(clock))
    assert "its group coordinator was lost again (CoordinatorLost: not settled within 160 s" in str(got.value)


async def test_a_first_alerts_consumer_that_lost_its_coordinator_is_rebuilt_and_commits_every_record(tmp_path) -> None:
    """A first alerts consumer that lost its coordinator is rebuilt past the bound and commits every record."""
    clock, broker = MovingClock(), FakeBroker(records=7)
    built: list[GroupConsumer] = []

    def make(service: Service) -> Callable[[], GroupConsumer]:
        def one() -> GroupConsumer:
            built.append(LosingConsumer(broker, clock, lose_after=2) if not built else
                         JoinedConsumer(broker, clock, dies_after=0))
            return built[-1]
        return one

    async with alerts_over(tmp_path, service_budget(clock), make) as service:
        with capture_logs() as logs:
            await asyncio.wait_for(asyncio.gather(  # hang guard
                service._alerts_loop(), stop_when(service, lambda: broker.committed == 7 or clock.now > 5000)), 10)
        assert broker.committed == 7
        assert rebuilds(service, "alerts") == 1
        assert "CoordinatorLost: its group coordinator unknown for 170 s, past the 160 s a start may take" in (
            rebuilding_errors(logs)[0])


class _Rebalancing(JoinedConsumer):
    """A joined, caught-up, idle consumer whose group rebalances from its 3rd poll for `rebalance` polls (10 s each)."""

    def __init__(self, broker: FakeBroker, clock: MovingClock, rebalance: int) -> None:
        super().__init__(broker, clock, dies_after=0)
        self.rebalance = rebalance

    async def getmany(self, *tps: TopicPartition, timeout_ms: int, max_records: int) -> dict[Any, list[Any]]:
        self._subscription.reassignment_in_progress = 3 <= self.polls + 1 < 3 + self.rebalance
        return await super().getmany(*tps, timeout_ms=timeout_ms, max_records=max_records)


@pytest.mark.parametrize(("rebalance", "expected"), [(0, 0), (15, 0), (20, 1)],
                         ids=["idle", "rebalance-150s", "rebalance-200s"])
async def test_an_idle_consumer_or_a_rebalance_within_the_bound_is_not_rebuilt(tmp_path, rebalance: int,
                                                                               expected: int) -> None:
    """A healthy idle consumer polled for 5000 s, or through a 150 s rebalance, is not rebuilt; one 200 s long is."""
    clock, broker = MovingClock(), FakeBroker(records=0)
    built: list[_Rebalancing] = []

    def one() -> _Rebalancing:  # a rebuilt one does not rebalance
        built.append(_Rebalancing(broker, clock, 0 if built else rebalance))
        return built[-1]

    service = await operator_over(tmp_path, one, clock, until=99, done=lambda _: clock.now > 100 + 5000)
    assert rebuilds(service, "operator") == expected


def test_the_time_out_of_the_group_counts_at_consecutive_polls_from_the_last_build() -> None:
    """Out of its group past the bound at every poll: the seconds; back in it, or rebuilt, the count starts again."""
    clock = MovingClock()
    budget = RebuildBudget(clock)
    assert budget.out_of_group(False, 30) is None
    clock.now += 30
    assert budget.out_of_group(False, 30) is None  # not past it
    assert budget.out_of_group(True, 30) is None
    clock.now += 31
    assert budget.out_of_group(False, 30) is None  # out again: from now
    clock.now += 31
    assert budget.out_of_group(False, 30) == 31
    budget.next(0)
    assert budget.out_of_group(False, 30) is None  # a new consumer


async def test_a_commit_waiting_for_a_lost_coordinator_ends_when_the_consumer_is_given_up() -> None:
    """`commit_unless_dead` stuck in a commit gives False once the consumer is given up; later ones skip at once."""
    broker = FakeBroker(records=0)
    fake = LosingConsumer(broker, MovingClock(), lose_after=0)
    fake._coordinator.coordinator_id = None
    committing = asyncio.ensure_future(commit_unless_dead(fake, {TopicPartition("a", 0): 1}))
    await asyncio.sleep(0.01)
    assert not committing.done()
    abandon(fake, CoordinatorLost("its group coordinator unknown for 170 s"))
    assert await asyncio.wait_for(committing, 5) is False  # hang guard
    assert await asyncio.wait_for(commit_unless_dead(fake, {TopicPartition("a", 0): 1}), 5) is False
    assert broker.committed == 0


async def test_a_rebuilt_consumer_that_reads_every_decision_settles_once_caught_up_to_its_start(tmp_path) -> None:
    """A rebuilt consumer reading every decision settles once caught up to its start's end offsets."""
    clock, broker = MovingClock(), FakeBroker(records=7)
    built: list[JoinedConsumer] = []

    def one() -> JoinedConsumer:  # the first's task dies; the rebuilt one reads the 7 decisions again, from the first
        built.append(JoinedConsumer(broker, clock, dies_after=3 if not built else 0))
        return built[-1]

    def read(service: Service) -> bool:
        ingest = service.operator_ingest
        assert ingest is not None
        ingest.reads_all, ingest._ends = True, {TopicPartition("a", 0): 7}  # as a fleet member's, at its start
        return len(built) > 1 and built[1].polls > 6

    service = await operator_over(tmp_path, one, clock, until=99, done=read)
    assert rebuilds(service, "operator") == 1
    assert broker.committed == 0
    assert service._rebuilding_why() is None  # settled


async def test_an_operator_consumer_whose_commit_waits_for_a_lost_coordinator_is_rebuilt(tmp_path,
                                                                                          monkeypatch) -> None:
    """An operator loop held in a commit waiting for its lost coordinator (no poll comes) is rebuilt past the bound."""
    monkeypatch.setattr(Service, "commit_watch_s", 0.01)
    clock, broker = MovingClock(), FakeBroker(records=7)
    built: list[GroupConsumer] = []

    def one() -> GroupConsumer:
        built.append(JoinedConsumer(broker, clock, dies_after=0) if built else
                     LosingInCommit(broker, clock, lose_after=2))
        return built[-1]

    with capture_logs() as logs:
        service = await operator_over(tmp_path, one, clock, until=99, done=lambda _: broker.committed == 7,
                                       budget=service_budget(clock))
    assert rebuilds(service, "operator") == 1
    assert broker.committed == 7
    assert "CoordinatorLost: its group coordinator unknown for 170 s, past the 160 s" in rebuilding_errors(logs)[0]


async def test_an_unexpected_error_in_a_commit_s_watch_is_logged_and_stops_its_loop(tmp_path, monkeypatch) -> None:
    """An unexpected error in a commit's watch is logged and raised into the loop held in the commit."""
    monkeypatch.setattr(Service, "commit_watch_s", 0.01)
    watched = Service._watched

    async def failing(self: Service, *args: Any) -> None:
        task = asyncio.current_task()
        if task is not None and task.get_name().endswith("commit watch"):
            raise RuntimeError("budget out of step")
        await watched(self, *args)

    monkeypatch.setattr(Service, "_watched", failing)
    clock, broker = MovingClock(), FakeBroker(records=7)
    with capture_logs() as logs, pytest.raises(RuntimeError, match="budget out of step"):  # before: the hang guard's
        await operator_over(tmp_path, lambda: LosingInCommit(broker, clock, lose_after=2), clock,  # TimeoutError
                            until=99, budget=service_budget(clock))
    (failed,) = [e for e in logs if e["event"] == "kafka_commit_watch_failed"]
    assert failed["consumer"] == "operator"
    assert failed["error"] == "RuntimeError: budget out of step"
