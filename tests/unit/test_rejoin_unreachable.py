"""A service rebuilt after a rejoin that cannot reach Kafka (the cluster that failed its transaction still down), or a
first one after a client of it started, is one more rejoin, within the same hourly budget, and `responder run` exits
75 when none is left; a first start that never reached Kafka is still a bad setting, exit 3
(responder/service/rejoin.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from responder.errors import BrokerUnreachable, TopicRefused
from responder.errors_kafka import StillUnreachable, TransactionFailed
from responder.exception_groups import only
from responder.service import Service, rejoin_reason, serve_rejoining
from responder.settings import Settings
from tests.rejoin_kit import (
    StandInService,
    fenced_error,
    lane_failed,
    readyz_while_rejoining,
    run_rejoining,
    stand_in_builder,
)

_DOWN = ("cannot reach Kafka at 127.0.0.1:9092 (AIOKafkaProducer): no answer in 30s: Connect call failed "
         "(check RESPONDER_KAFKA_BOOTSTRAP; RESPONDER_KAFKA_CONNECT_TIMEOUT sets the wait)")


def _at_start() -> BaseException:
    """What a service's run() raises when its start reaches no broker (the changelog producer's, in `_prepare`)."""
    return BrokerUnreachable(_DOWN)


def _later() -> BaseException:
    """As a running service raises it: a consumer rebuilt after a dead coordinator reaches no broker, in the loops'
    and the shippers' task groups."""
    return ExceptionGroup("run", [ExceptionGroup("loops", [BrokerUnreachable(_DOWN)])])


def test_an_unreachable_kafka_is_a_reason_only_for_a_rebuilt_service():
    """BrokerUnreachable is `kafka_unreachable` only for a `rebuilt` service; a fence or failed transaction wins."""
    assert [rejoin_reason(e(), rebuilt=True) for e in (_at_start, _later)] == ["kafka_unreachable"] * 2
    assert [rejoin_reason(e()) for e in (_at_start, _later)] == [None, None]
    assert rejoin_reason(ExceptionGroup("run", [lane_failed(), _at_start()]), rebuilt=True) == "transaction_failed"
    assert rejoin_reason(ExceptionGroup("run", [fenced_error(), _at_start()]), rebuilt=True) == "fenced"
    assert rejoin_reason(ExceptionGroup("run", [TopicRefused("acl"), _at_start()]), rebuilt=True) is None


def _first(tmp_path: Path, *, publisher_starts: bool) -> Service:
    """A first service (no runbooks; a dry run: no operator consumer) whose topics are there, whose approvals
    publisher starts (a broker answered its settings) or reaches no broker, and whose alerts consumer reaches none."""
    tmp_path.mkdir()
    service = Service(Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", dry_run=True,
                               runbooks_dir=tmp_path, topics=["a"]), runbooks=[])

    async def started(*_: Any, **__: Any) -> bool:  # a start is told what sets its wait too
        return True

    async def unreachable(*_: Any, **__: Any) -> None:
        raise _at_start()

    service._writable_topics = started  # type: ignore[method-assign]
    service.publisher.start = started if publisher_starts else unreachable  # type: ignore[method-assign]
    service.approvals.start = started  # type: ignore[method-assign]
    service.ingest.start = unreachable  # type: ignore[method-assign]
    return service


async def test_a_first_service_that_reached_kafka_rejoins_when_it_is_unreachable_later(tmp_path):
    """A first service that reached Kafka and later reaches no broker is rebuilt (`kafka_unreachable`), not ended."""
    reached, built = _first(tmp_path / "reached", publisher_starts=True), []

    def build(previous: Any) -> Any:
        built.append(reached if previous is None else StandInService(None))
        return built[-1]

    with capture_logs() as logs:
        await serve_rejoining(build, rejoins=3, backoff=0.001)
    assert reached.reached_kafka
    assert len(built) == 2
    assert [e["reason"] for e in logs if e["event"] == "replica_rejoining"] == ["kafka_unreachable"]
    never = _first(tmp_path / "never", publisher_starts=False)
    with pytest.raises(BaseException) as raised:  # noqa: PT011 - the task groups' ExceptionGroup, checked below
        await serve_rejoining(lambda _: never, rejoins=3, backoff=0.001)  # type: ignore[arg-type, return-value]
    assert only(raised.value, BrokerUnreachable) is not None
    assert not never.reached_kafka


@pytest.mark.parametrize("unreachable", [_at_start, _later])
async def test_a_rebuilt_service_that_cannot_reach_kafka_is_rebuilt_again(unreachable):
    """A rebuilt service that reaches no broker is dropped and another built, which serves once Kafka is back."""
    build, built = stand_in_builder([lane_failed(), unreachable(), None])
    with capture_logs() as logs:
        await serve_rejoining(build, rejoins=3, backoff=0.001)
    assert len(built) == 3
    rejoining = [e for e in logs if e["event"] == "replica_rejoining"]
    assert [(e["reason"], e["rejoin"]) for e in rejoining] == [("transaction_failed", 1), ("kafka_unreachable", 2)]
    assert rejoining[1]["error"] == f"BrokerUnreachable: {_DOWN}"


async def test_an_unreachable_kafka_through_every_rejoin_ends_in_still_unreachable():
    """Rebuilt services that keep reaching no broker use up the budget and end with StillUnreachable (exit 75)."""
    build, built = stand_in_builder([fenced_error(), _at_start(), _later(), None])
    with capture_logs() as logs, pytest.raises(StillUnreachable) as raised:
        await serve_rejoining(build, rejoins=2, backoff=0.001)
    assert isinstance(raised.value, TransactionFailed)
    assert "fenced 1 time and cut off from Kafka after reaching it 2 times within 3600 s" in str(raised.value)
    assert _DOWN in str(raised.value)
    assert len(built) == 3
    assert logs[-1]["event"] == "replica_unreachable_exiting"


async def test_a_first_start_that_cannot_reach_kafka_still_ends_serving():
    """A first service's BrokerUnreachable is raised at once and no second service is built, whatever the budget."""
    build, built = stand_in_builder([_at_start(), None])
    with pytest.raises(BrokerUnreachable, match="cannot reach Kafka"):
        await serve_rejoining(build, rejoins=3, backoff=0.001)
    assert len(built) == 1


async def test_a_rebuilt_service_with_another_bad_setting_still_ends_serving():
    """A rebuilt service's other ConfigError (a topic refused by an ACL) is no rejoin: it is raised as it is."""
    build, built = stand_in_builder([lane_failed(), TopicRefused("not authorised to write alerts"), None])
    with pytest.raises(TopicRefused):
        await serve_rejoining(build, rejoins=3, backoff=0.001)
    assert len(built) == 2


async def test_a_stop_asked_for_while_kafka_is_unreachable_ends_cleanly():
    """A stop asked for while a rebuilt service cannot reach Kafka ends serving without an error, building nothing."""
    stop = asyncio.Event()
    built: list[Any] = []

    class _Unreachable(StandInService):
        async def run(self) -> None:
            stop.set()
            await asyncio.sleep(0.05)  # the stop reaches the loop
            raise _at_start()

    def build(previous: Any) -> Any:
        built.append(StandInService(lane_failed()) if previous is None else _Unreachable(None))
        return built[-1]

    with capture_logs() as logs:
        await asyncio.wait_for(serve_rejoining(build, rejoins=3, backoff=0.001, stop=stop), 5)
    assert len(built) == 2
    assert "replica_unreachable_while_stopping" in [e["event"] for e in logs]


async def test_a_stop_event_stops_the_running_service():
    """Setting `stop` asks the running service to stop (drain and commit), as SIGTERM does, and serving ends."""
    hold, stop = asyncio.Event(), asyncio.Event()
    service = StandInService(None, hold)
    task = asyncio.create_task(serve_rejoining(lambda _: service, rejoins=3, stop=stop))  # type: ignore[arg-type, return-value]
    await asyncio.sleep(0.05)
    assert not task.done()
    stop.set()
    await asyncio.wait_for(task, 5)
    assert service.stopped


def test_readyz_says_an_unreachable_kafka_is_why_it_rejoins(tmp_path):
    """Between two services /readyz names the unreachable Kafka cluster as why it rejoins."""
    said = readyz_while_rejoining(tmp_path, "kafka_unreachable")
    assert "rejoining after an unreachable Kafka cluster (1 of 5 rejoins this hour)" in said


def test_run_exits_75_when_kafka_stays_unreachable_through_the_rejoins(monkeypatch):
    """`responder run` with Kafka unreachable through the rejoins prints one line naming the broker and exits 75."""
    result, built = run_rejoining(monkeypatch, [lane_failed(), _at_start(), None])
    assert result.exit_code == 75, result.output
    assert "cut off from Kafka after reaching it 1 time" in result.output
    assert "Traceback" not in result.output
    assert len(built) == 2
