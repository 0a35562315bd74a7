"""A consumer out of its group past the bound while its Kafka cluster does not answer (every broker down, or cut off)
is not rebuilt: it waits for Kafka, and `/readyz` says so; once Kafka answers and the consumer is still out of its
group a start bound later, it is rebuilt (responder/service/watch.py `_watched`, responder/ingest/lost.py
`cluster_answers`)."""

from __future__ import annotations

import itertools
from typing import Any

from structlog.testing import capture_logs

from responder.service import Service
from tests.consumer_kit import FakeBroker, FakeCluster, GroupConsumer, JoinedConsumer, MovingClock
from tests.rebuild_kit import (
    BOUND,
    LosingConsumer,
    LosingInCommit,
    operator_over,
    rebuilding_errors,
    rebuilds,
    service_budget,
)

BACK = 1100.0  # Kafka answers again from this time of the test's clock on (it starts at 100)


def _down_until_back(clock: MovingClock, asked: list[float], *, hangs: bool = False) -> FakeCluster:
    """A cluster that answers no probe before BACK (`asked`: the clock at each probe)."""
    return FakeCluster(lambda: asked.append(clock.now) is None and clock.now >= BACK, hangs=hangs)


def _events(logs: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == event]


async def test_a_consumer_out_of_its_group_waits_for_kafka_down_and_is_rebuilt_once_it_answers(tmp_path) -> None:
    """With Kafka down, a consumer out of its group is not rebuilt and `/readyz` says so; once Kafka is back it is."""
    clock, broker, asked = MovingClock(), FakeBroker(records=0), []
    cluster = _down_until_back(clock, asked)
    built: list[GroupConsumer] = []
    services: list[Service] = []
    readyz: list[tuple[float, str | None]] = []  # (clock, `/readyz`) at each poll of the first consumer

    class _Watched(LosingConsumer):
        async def getmany(self, *tps: Any, timeout_ms: int, max_records: int) -> dict[Any, list[Any]]:
            readyz.extend((clock.now, service.unready()) for service in services)
            return await super().getmany(*tps, timeout_ms=timeout_ms, max_records=max_records)

    def one() -> GroupConsumer:  # the first loses its coordinator at its 2nd poll (120); a rebuilt one finds it
        built.append(JoinedConsumer(broker, clock, 0, cluster=cluster) if built else
                     _Watched(broker, clock, 2, cluster))
        return built[-1]

    def settled(service: Service) -> bool:
        services[:] = [service]
        return clock.now > 10000 or (len(built) > 1 and built[1].polls > 2 and service.unready() is None)

    with capture_logs() as logs:
        service = await operator_over(tmp_path, one, clock, until=99, done=settled)
    assert rebuilds(service, "operator") == 1
    assert built[1].joined_at > BACK + BOUND  # not while Kafka was down (before the fix: at 290)
    waiting = [why for at, why in readyz if 120 + BOUND + 10 < at < BACK]
    assert waiting
    assert all(why and why.startswith("the operator consumer is out of its group for ") and
               "Kafka unreachable" in why and "waiting for it" in why for why in waiting)
    down = [at for at in asked if at < BACK]
    assert down
    assert down[0] > 120 + BOUND
    assert all(b - a >= 15 for a, b in itertools.pairwise(down))  # not at every poll (10 s apart)
    assert len(_events(logs, "kafka_consumer_waiting_for_cluster")) == 1
    assert len(_events(logs, "kafka_consumer_cluster_back")) == 1
    assert "CoordinatorLost: its group coordinator unknown for 170 s, past the 160 s" in rebuilding_errors(logs)[0]
    assert service._rebuilding_why() is None  # settled


async def test_an_operator_loop_held_in_a_commit_while_kafka_is_down_is_rebuilt_only_once_it_answers(
        tmp_path, monkeypatch) -> None:
    """An operator loop held in a commit while Kafka is down is rebuilt only once Kafka answers and a bound passed."""
    monkeypatch.setattr(Service, "commit_watch_s", 0.01)
    monkeypatch.setattr(Service, "cluster_probe_s", 0.01, raising=False)  # without the fix: its asserts fail
    clock, broker, asked = MovingClock(), FakeBroker(records=7), []
    cluster = _down_until_back(clock, asked, hangs=True)
    built: list[GroupConsumer] = []

    def one() -> GroupConsumer:
        built.append(JoinedConsumer(broker, clock, 0, cluster=cluster) if built else
                     LosingInCommit(broker, clock, lose_after=2, cluster=cluster))
        return built[-1]

    with capture_logs() as logs:
        service = await operator_over(tmp_path, one, clock, until=99, done=lambda _: broker.committed == 7,
                                       budget=service_budget(clock))
    assert rebuilds(service, "operator") == 1
    assert built[1].joined_at > BACK + BOUND  # not while Kafka was down (before the fix: at 310)
    assert any(at < BACK for at in asked)
    assert len(_events(logs, "kafka_consumer_waiting_for_cluster")) == 1
    assert broker.committed == 7


async def test_a_probe_that_fails_unexpectedly_counts_as_no_answer_and_the_commit_watch_goes_on(
        tmp_path, monkeypatch) -> None:
    """A probe raising unexpectedly counts as Kafka unreachable, and the commit watch goes on until Kafka answers."""
    monkeypatch.setattr(Service, "commit_watch_s", 0.01)
    clock, broker = MovingClock(), FakeBroker(records=7)

    def answers() -> bool:
        if clock.now < BACK:
            raise AssertionError("assignment changed")
        return True

    cluster = FakeCluster(answers)
    built: list[GroupConsumer] = []

    def one() -> GroupConsumer:
        built.append(JoinedConsumer(broker, clock, 0, cluster=cluster) if built else
                     LosingInCommit(broker, clock, lose_after=2, cluster=cluster))
        return built[-1]

    with capture_logs() as logs:  # before the fix: the watch died at its first probe, the commit held for ever (the
        service = await operator_over(tmp_path, one, clock, until=99,  # hang guard's TimeoutError)
                                       done=lambda _: broker.committed == 7, budget=service_budget(clock))
    assert broker.committed == 7
    assert rebuilds(service, "operator") == 1
    assert built[1].joined_at > BACK + BOUND
    failed = _events(logs, "kafka_cluster_probe_failed")
    assert failed
    assert failed[0]["consumer"] == "operator"
    assert failed[0]["error"] == "AssertionError: assignment changed"
    assert len(_events(logs, "kafka_consumer_waiting_for_cluster")) == 1


async def test_a_flaky_probe_restarts_the_bound_once_an_out_of_group_stretch(tmp_path) -> None:
    """A flaky probe restarts the bound once while the consumer is out of its group; the next answer rebuilds it."""
    clock, broker, answers = MovingClock(), FakeBroker(records=0), itertools.cycle([False, True])
    cluster = FakeCluster(lambda: next(answers))
    built: list[GroupConsumer] = []

    def one() -> GroupConsumer:  # the first loses its coordinator at its 2nd poll (120); a rebuilt one finds it
        built.append(JoinedConsumer(broker, clock, 0, cluster=cluster) if built else
                     LosingConsumer(broker, clock, 2, cluster))
        return built[-1]

    def settled(_: Service) -> bool:
        return clock.now > 120 + 8 * BOUND or (len(built) > 1 and built[1].polls > 2)

    with capture_logs() as logs:
        service = await operator_over(tmp_path, one, clock, until=99, done=settled)
    assert rebuilds(service, "operator") == 1  # before the fix: 0, a fresh bound after each answer
    assert built[1].joined_at < 120 + 3 * BOUND  # one bound, then one more after Kafka first answered
    assert len(_events(logs, "kafka_consumer_waiting_for_cluster")) == 2
    assert len(_events(logs, "kafka_consumer_cluster_back")) == 2
    assert "unknown for 190 s, past the 160 s" in rebuilding_errors(logs)[0]  # counted since Kafka first answered


async def test_a_consumer_back_in_its_group_after_kafka_answered_again_says_so(tmp_path) -> None:
    """A consumer back in its group after Kafka returns logs `kafka_consumer_back_in_group` once, rebuilding nothing."""
    clock, broker, asked = MovingClock(), FakeBroker(records=0), []
    cluster = _down_until_back(clock, asked)

    class _Refinding(LosingConsumer):  # finds its coordinator again 50 s after Kafka is back
        async def getmany(self, *tps: Any, timeout_ms: int, max_records: int) -> dict[Any, list[Any]]:
            if clock.now >= BACK + 50:
                self._coordinator.coordinator_id = 1
            return await super().getmany(*tps, timeout_ms=timeout_ms, max_records=max_records)

    with capture_logs() as logs:
        service = await operator_over(tmp_path, lambda: _Refinding(broker, clock, 2, cluster), clock, until=1,
                                       done=lambda _: clock.now > BACK + 2 * BOUND)
    assert rebuilds(service, "operator") == 0
    watch = ("kafka_consumer_waiting_for_cluster", "kafka_consumer_cluster_back", "kafka_consumer_back_in_group")
    assert [e["event"] for e in logs if e["event"] in watch] == list(watch)  # before the fix: no back_in_group
