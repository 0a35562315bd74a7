"""The metrics server is the process's: it keeps its port while a fenced replica drops its service and builds the
next one, /healthz stays 200 and /readyz says the replica is rejoining (responder/service/rejoin.py)."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import pytest

from responder.errors import TimelineError
from responder.errors_kafka import ReplicaFenced
from responder.metrics import Metrics
from responder.metrics_server import MetricsServer
from responder.service import Service, health_server, rebuilds, serve_rejoining
from responder.service.rejoin import _rejoining
from tests.http import http_request
from tests.rejoin_kit import health_settings


def _fence() -> BaseException:
    """What a fenced service's run() raises: a TimelineError from the changelog barrier."""
    try:
        raise ReplicaFenced("changelog c[0]: this replica was fenced")
    except ReplicaFenced as exc:
        try:
            raise TimelineError("state changelog write failed") from exc
        except TimelineError as err:
            return ExceptionGroup("run", [err])


async def _refused(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return True
    writer.close()
    return False


class _Fake:
    """Stands in for a service built with the shared server: run() raises `outcome` (None: waits for a stop)."""

    shares_metrics_server = True

    def __init__(self, server: MetricsServer, outcome: BaseException | None) -> None:
        self.metrics_server, self.outcome, self.stop = server, outcome, asyncio.Event()
        metrics = Metrics()
        metrics.partitions.lag.labels("alerts", "0").set(42)  # a partition gauge of this service's
        server.attach(metrics, lambda: True, lambda: None)

    async def run(self) -> None:
        if self.outcome is not None:
            raise self.outcome
        await self.stop.wait()

    def request_stop(self) -> None:
        self.stop.set()


async def test_probes_answer_between_a_fence_and_the_next_service(tmp_path):
    """During the backoff after a fence /healthz is 200, /readyz 503 says why, and /metrics holds only the count."""
    health = health_server(health_settings(tmp_path))
    assert health is not None
    port = await health.start()
    built: list[_Fake] = []

    def build(previous: Any) -> Any:
        built.append(_Fake(health, _fence()))
        return built[-1]

    task = asyncio.create_task(serve_rejoining(build, rejoins=3, backoff=30))
    for _ in range(500):  # the fence is seen within a few loop turns; bounded so that a missing reason fails
        if built and "rejoining" in (await http_request(port, "/readyz"))[1]:
            break
        await asyncio.sleep(0.01)
    status, body = await http_request(port, "/readyz")
    assert status == 503
    assert "rejoining after a fence (1 of 3 rejoins this hour)" in body
    assert await http_request(port, "/healthz") == (200, "ok\n")
    exposed = (await http_request(port, "/metrics"))[1]
    assert "responder_replica_rejoins_total 1.0" in exposed
    assert "responder_consumer_lag{" not in exposed  # the fenced service's partitions are another replica's
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(task, 5)
    assert len(built) == 1
    assert not health.listening
    assert await _refused(port)


async def test_a_rebuilt_service_that_fails_otherwise_closes_the_port(tmp_path):
    """A service rebuilt after a fence that then fails with another error ends serving, and the port is closed."""
    health = health_server(health_settings(tmp_path))
    assert health is not None
    port = await health.start()
    outcomes: list[BaseException] = [_fence(), RuntimeError("broken")]

    def build(previous: Any) -> Any:
        return _Fake(health, outcomes.pop(0))

    with pytest.raises(RuntimeError):
        await serve_rejoining(build, rejoins=3, backoff=0.01)
    assert await _refused(port)


async def test_a_rebuilt_service_answers_on_the_port_its_predecessor_kept(tmp_path, monkeypatch):
    """Rebuilt services attach the shared server, start it once, leave it listening, and carry the rejoin count."""
    async def reachable(*_: Any) -> None:
        return None

    monkeypatch.setattr("responder.service.running.check_connection", reachable)
    health = health_server(health_settings(tmp_path))
    assert isinstance(health, MetricsServer)
    build = rebuilds(health_settings(tmp_path), metrics_server=health, runbooks=[])
    first: Service = build(None)
    assert first.metrics_server is health
    await first._prepare()  # starts it: the first service reaches the point where a lone one listens
    port = health.port
    assert health.listening
    assert (await http_request(port, "/readyz")) == (503, "not ready: starting: joining the consumer group\n")
    await first._close_started([])
    assert health.listening  # the process keeps its port across the rebuild
    second: Service = build(first)
    await second._prepare()  # would fail with the port in use if it started the server again
    second.ready.set()
    assert (await http_request(port, "/readyz")) == (200, "ready\n")
    await second._close_started([])
    third: Service = build(second)
    assert [s.metrics.value("responder_replica_rejoins_total") for s in (first, second, third)] == [0, 1, 2]
    assert "responder_replica_rejoins_total 2.0" in (await http_request(port, "/metrics"))[1]
    await third.close_unstarted()
    await second.close_unstarted()
    await first.close_unstarted()
    await health.stop()
    assert await _refused(port)


async def test_a_lone_service_still_owns_its_server(tmp_path):
    """A service built without a shared server (tests, `serve`) makes its own from the settings and stops it."""
    service = Service(health_settings(tmp_path), runbooks=[])
    assert service.metrics_server is not None
    assert not service.shares_metrics_server
    port = await service.metrics_server.start()
    await service._close_started([])
    await service.close_unstarted()
    assert await _refused(port)


def test_the_count_between_services_goes_on_from_the_fenced_ones(tmp_path):
    """A service that had rejoined once is fenced again: between services the count shows 2, not 1."""
    health = health_server(health_settings(tmp_path))
    assert health is not None
    once = Metrics()
    once.rejoins.inc(1)
    health.attach(once, lambda: True, lambda: None)
    _rejoining(health, 2, 5, 2.0)
    assert health.metrics.value("responder_replica_rejoins_total") == 2
    assert "rejoining after a fence (2 of 5 rejoins this hour)" in (health.why() or "")


async def test_a_cancel_while_serving_ends_its_stop_watcher_still_stops_the_metrics_server(tmp_path):
    """Cancelled while waiting for its stop watcher, `serve_rejoining` still stops the metrics server and raises."""
    health = health_server(health_settings(tmp_path))
    assert health is not None
    port = await health.start()

    class _Ending(_Fake):
        async def run(self) -> None:  # ends cleanly, our task's cancel due just as serving's `finally` starts waiting
            task = asyncio.current_task()
            assert task is not None
            asyncio.get_running_loop().call_soon(task.cancel)

    task = asyncio.create_task(serve_rejoining(lambda _: _Ending(health, None), rejoins=3, stop=asyncio.Event()))
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert task.cancelled()
    assert not health.listening
    assert await _refused(port)
