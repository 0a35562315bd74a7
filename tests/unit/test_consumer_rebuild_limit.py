"""Rebuilds of a consumer whose group coordinator keeps dying are bounded (responder/service/consumers.py): backed
off, forgotten after a commit or once a rebuilt consumer polled caught up, and past the limit the service stops
loudly (exit 75)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from structlog.testing import capture_logs

from responder.errors_kafka import ConsumerRebuildsExhausted
from responder.ingest.coordinator import RebuildBudget
from responder.service import Service
from responder.service.consumers import rebuilds_exhausted
from tests.consumer_kit import FakeBroker, GroupConsumer, MovingClock, alerts_over, stop_when


class _DiesOnceCommitted(GroupConsumer):
    """A group consumer whose coordinator dies right after its first commit went through."""

    async def commit(self, offsets: dict[Any, int]) -> None:
        await super().commit(offsets)
        self._coordinator.die()


def test_rebuilds_back_off_then_run_out_without_a_commit() -> None:
    """The first rebuild is at once, the next ones wait longer each time, and the one past the limit is refused."""
    clock = MovingClock()
    budget = RebuildBudget(clock, limit=4, window=600.0, backoff=1.0, backoff_max=3.0)
    assert [budget.next(commits=0) for _ in range(4)] == [0.0, 1.0, 2.0, 3.0]
    assert budget.next(commits=0) is None
    assert budget.count == 4


def test_a_commit_since_the_last_rebuild_starts_the_count_again() -> None:
    """A consumer that committed an offset since its last rebuild made progress: its rebuilds count from zero."""
    clock = MovingClock()
    budget = RebuildBudget(clock, limit=2, window=600.0, backoff=1.0, backoff_max=30.0)
    assert [budget.next(commits=0), budget.next(commits=0)] == [0.0, 1.0]
    assert budget.next(commits=1) == 0.0
    assert budget.count == 1


def test_rebuilds_older_than_the_window_are_forgotten() -> None:
    """A quiet consumer (nothing to commit) is refused only for rebuilds crowded into one window."""
    clock = MovingClock()
    budget = RebuildBudget(clock, limit=2, window=600.0, backoff=1.0, backoff_max=30.0)
    budget.next(commits=0)
    clock.now += 500
    budget.next(commits=0)
    clock.now += 200  # the first is out of the window
    assert budget.next(commits=0) == 1.0
    assert budget.next(commits=0) is None


def test_a_quiet_consumer_rebuilt_once_per_broker_restart_is_never_refused() -> None:
    """A quiet consumer whose every rebuilt consumer polled caught up before dying again is never refused."""
    clock = MovingClock()
    budget = RebuildBudget(clock)  # the defaults: 5 rebuilds within 600 s
    delays = []
    for _ in range(12):  # a broker restarted every 20 s, its coordinator death each time
        delays.append(budget.next(commits=0))
        budget.polled(False, lambda: True)  # the new one joined, read all there is
        clock.now += 20
    assert delays == [0.0] * 12
    assert budget.count == 0


@pytest.mark.parametrize(("records", "live"), [(False, False), (True, True)], ids=["never-live", "read-records"])
def test_a_rebuilt_consumer_that_never_settled_counts_on_however_long_it_ran(records: bool, live: bool) -> None:
    """A rebuilt consumer never found live and caught up, or that read records it never committed, counts on."""
    clock = MovingClock()
    budget = RebuildBudget(clock, limit=3, window=600.0, backoff=10.0, backoff_max=30.0)
    delays = []
    for _ in range(4):
        delays.append(budget.next(commits=0))
        budget.polled(records, lambda: live)
        budget.polled(False, lambda: live)  # then caught up, its records still not committed
        clock.now += 100
    assert delays == [0.0, 10.0, 20.0, None]


async def test_an_alerts_consumer_rebuilt_without_progress_stops_the_service(tmp_path) -> None:
    """Alerts consumers rebuilt without ever committing stop the alerts loop with ConsumerRebuildsExhausted."""
    broker = FakeBroker(records=7)
    built: list[GroupConsumer] = []
    unready: list[str | None] = []

    def make(service: Service) -> Callable[[], GroupConsumer]:
        def one() -> GroupConsumer:
            fake = GroupConsumer(broker, dies_after=1)  # its first poll's records cannot be committed: no progress
            fake.on_start = lambda: unready.append(service.unready())
            built.append(fake)
            return fake
        return one

    async with alerts_over(tmp_path, lambda: RebuildBudget(limit=3, backoff=0.0, backoff_max=0.0), make) as service:
        with capture_logs() as logs, pytest.raises(ConsumerRebuildsExhausted, match="alerts consumer") as raised:
            await asyncio.wait_for(service._alerts_loop(), 10)  # hang guard
        assert "3 times" in str(raised.value)
        assert broker.committed == 0
        assert len(built) == 4  # the first and three rebuilt ones
        assert service.metrics.value("responder_consumer_rebuilds_total", consumer="alerts") == 3
        assert all("rebuilding the alerts consumer" in str(u) for u in unready[1:])
        assert "kafka_consumer_rebuilds_exhausted" in [e["event"] for e in logs if e["log_level"] == "critical"]


async def test_a_consumer_that_commits_between_rebuilds_is_rebuilt_past_the_limit(tmp_path) -> None:
    """An alerts consumer that commits between rebuilds is progress, so it is rebuilt past the limit."""
    broker = FakeBroker(records=9)
    async with alerts_over(tmp_path, lambda: RebuildBudget(limit=2, backoff=0.0, backoff_max=0.0),
                           lambda service: lambda: _DiesOnceCommitted(broker)) as service:
        await asyncio.wait_for(asyncio.gather(  # hang guard
            service._alerts_loop(), stop_when(service, lambda: broker.committed == len(broker.log))), 10)
        assert broker.committed == 9
        assert service.metrics.value("responder_consumer_rebuilds_total", consumer="alerts") > 2


async def test_a_stop_requested_during_the_backoff_ends_it_without_a_rebuild(tmp_path) -> None:
    """A stop requested during a rebuild's backoff ends the alerts loop without building a new consumer."""
    broker = FakeBroker(records=1)
    built: list[GroupConsumer] = []

    def make(service: Service) -> Callable[[], GroupConsumer]:
        return lambda: built.append(GroupConsumer(broker, dies_after=1)) or built[-1]

    async with alerts_over(tmp_path, lambda: RebuildBudget(backoff=3600.0), make) as service:
        rebuilds = lambda: service.metrics.value("responder_consumer_rebuilds_total", consumer="alerts")  # noqa: E731
        held: list[set[int]] = []

        def backing_off() -> bool:
            if rebuilds() < 2:
                return False
            held.append(set(service._given))
            return True

        await asyncio.wait_for(asyncio.gather(  # hang guard
            service._alerts_loop(), stop_when(service, backing_off)), 10)
        assert held == [set()]  # revoked before the wait
        assert len(built) == 2  # the first rebuild, at once; the second never built


def test_rebuilds_exhausted_is_found_inside_the_task_groups() -> None:
    """The loops run in task groups: the give-up is found as a leaf, nothing else is."""
    gave_up = ConsumerRebuildsExhausted("the alerts consumer was rebuilt 5 times")
    assert rebuilds_exhausted(ExceptionGroup("g", [ExceptionGroup("h", [gave_up])])) is gave_up
    assert rebuilds_exhausted(ExceptionGroup("g", [ValueError("x")])) is None


def test_rebuilds_exhausted_beside_another_error_is_not_turned_into_exit_75() -> None:
    """ConsumerRebuildsExhausted beside another error is not turned into exit 75; the other error is not hidden."""
    gave_up = ConsumerRebuildsExhausted("the alerts consumer was rebuilt 5 times")
    assert rebuilds_exhausted(ExceptionGroup("g", [gave_up, ExceptionGroup("h", [ValueError("a bug")])])) is None
