"""A fenced replica rejoins in-process (`serve_rejoining`), a bounded number of times, and `responder run` exits 75
when it has no rejoin left; anything but a fence ends the service as before."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from structlog.testing import capture_logs
from typer.testing import CliRunner

from responder.cli import app
from responder.errors import ConfigError, TimelineError
from responder.errors_kafka import ConsumerRebuildsExhausted, ReplicaFenced
from responder.models.event import RawRecord
from responder.service import Service, rebuilds, rejoin_reason, serve_rejoining
from responder.service import rejoin as rejoin_module
from responder.settings import Settings
from responder.timeline import FileStore, MemoryStore, Recorder
from tests.rejoin_kit import StandInService, fenced_error, fenced_service, stand_in_builder, stopped_while_failing

ROOT = Path(__file__).resolve().parents[2]


def test_a_fence_is_told_from_other_failures():
    """Only an error whose every leaf comes from a ReplicaFenced counts as a fence."""
    assert rejoin_reason(fenced_error()) == "fenced"
    assert rejoin_reason(ReplicaFenced("p")) == "fenced"
    assert rejoin_reason(TimelineError("disk full")) != "fenced"
    assert rejoin_reason(ExceptionGroup("run", [fenced_error(), TimelineError("disk full")])) != "fenced"
    assert rejoin_reason(ExceptionGroup("run", [ConfigError("bad")])) != "fenced"


async def test_a_fenced_service_is_replaced_by_a_new_one():
    """After a fence a new service is built and run; its clean end ends serving, with `replica_rejoining` logged."""
    build, built = stand_in_builder([fenced_error(), None])
    with capture_logs() as logs:
        await serve_rejoining(build, rejoins=3, backoff=0.01)
    assert len(built) == 2
    assert [e["event"] for e in logs if e["event"].startswith("replica_")] == ["replica_rejoining"]


async def test_any_other_failure_ends_serving_at_once():
    """A failure that is not a fence (a broken timeline) propagates; no second service is built."""
    build, built = stand_in_builder([TimelineError("disk full"), None])
    with pytest.raises(TimelineError, match="disk full"):
        await serve_rejoining(build, rejoins=3, backoff=0.01)
    assert len(built) == 1


@pytest.mark.parametrize("rejoins", [0, 2])
async def test_rejoins_are_bounded(rejoins):
    """`rejoins` fences are survived; the next one raises ReplicaFenced (0: the first one does)."""
    build, built = stand_in_builder([fenced_error()] * (rejoins + 1) + [None])
    with capture_logs() as logs, pytest.raises(ReplicaFenced, match=f"fenced {rejoins + 1} times?"):
        await serve_rejoining(build, rejoins=rejoins, backoff=0.001)
    assert len(built) == rejoins + 1
    assert logs[-1]["event"] == "replica_fenced_exiting"


async def test_a_signal_while_waiting_to_rejoin_stops_serving():
    """SIGTERM during the backoff after a fence ends serving without building another service."""
    build, built = stand_in_builder([fenced_error(), None])
    task = asyncio.create_task(serve_rejoining(build, rejoins=3, backoff=30))
    while not built:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(task, 5)
    assert len(built) == 1


async def test_a_signal_stops_the_running_service():
    """SIGTERM while a service runs asks it to stop (drain and commit), and serving ends when it has."""
    hold = asyncio.Event()
    service = StandInService(None, hold)
    task = asyncio.create_task(serve_rejoining(lambda _: service, rejoins=3))  # type: ignore[arg-type, return-value]
    await asyncio.sleep(0.05)
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(task, 5)
    assert service.stopped


async def test_a_stop_asked_for_while_fenced_ends_cleanly():
    """A SIGTERM while the running service is failing fenced ends serving without an error and builds nothing more."""
    built, events = await stopped_while_failing(fenced_error())
    assert built == 1
    assert "replica_fenced_while_stopping" in events


def test_a_later_flush_still_carries_the_fence():
    """After a fenced changelog write, the next flush's 'failed earlier' error is raised from the fence too."""
    async def run() -> list[BaseException]:
        recorder = Recorder(MemoryStore(), writer="w")

        async def barrier(entries: Any) -> None:
            raise ReplicaFenced("changelog c[0]: fenced")

        recorder.barriers.append(barrier)
        seen = []
        for _ in range(2):
            recorder.append("step.intent", {"n": 1}, incident="inc-1")
            try:
                await recorder.flush()
            except TimelineError as exc:
                seen.append(exc)
        return seen

    first, second = asyncio.run(run())
    assert "failed earlier" in str(second)
    assert rejoin_reason(first) == "fenced"
    assert rejoin_reason(second) == "fenced"


def test_rebuilds_keep_the_runbooks_and_never_adopt(tmp_path):
    """A service rebuilt after a fence runs the runbooks the first one loaded and never adopts their digest."""
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    shutil.copy(ROOT / "runbooks" / "iam-credential-compromise.yaml", runbooks)
    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", runbooks_dir=runbooks,
                        topics=["a"], changelog_topic="changelog", fleet_adopt_digest=True)
    build = rebuilds(settings)

    async def run() -> tuple[Any, Any]:
        first = build(None)
        loaded = sorted(first.engine.runbooks)
        await first.close_unstarted()
        first.recorder.close()
        for path in runbooks.iterdir():  # the directory changes under the running fleet
            path.unlink()
        second = build(first)
        try:
            return loaded, (sorted(second.engine.runbooks), second.settings.fleet_adopt_digest)
        finally:
            await second.close_unstarted()
            second.recorder.close()

    loaded, (again, adopt) = asyncio.run(run())
    assert loaded
    assert again == loaded
    assert adopt is False


async def test_a_failed_last_flush_still_releases_the_timeline_and_the_port(tmp_path, monkeypatch):
    """When a fenced service's last flush fails, teardown still closes the timeline and frees the metrics port."""
    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", runbooks_dir=tmp_path,
                        topics=["a"], changelog_topic="changelog", metrics_port=0)
    service = Service(settings, runbooks=[])
    assert service.metrics_server is not None
    await service.metrics_server.start()

    async def fenced_flush() -> None:
        raise fenced_error().exceptions[0].exceptions[0]  # type: ignore[union-attr]

    monkeypatch.setattr(service.recorder, "flush", fenced_flush)
    with pytest.raises(TimelineError):
        await service._close_started([])
    assert service.metrics_server._server is None
    FileStore(settings.timeline_path).close()  # TimelineLocked if the lock were still held


async def test_the_first_teardown_failure_is_the_one_raised(tmp_path, monkeypatch):
    """When a later teardown step also fails, it is logged and the earlier flush's fence is what is raised."""
    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", runbooks_dir=tmp_path,
                        topics=["a"], changelog_topic="changelog", metrics_port=0)
    service = Service(settings, runbooks=[])
    assert service.metrics_server is not None

    async def fenced_flush() -> None:
        raise fenced_error().exceptions[0].exceptions[0]  # type: ignore[union-attr]

    async def broken_stop() -> None:
        raise OSError("socket")

    monkeypatch.setattr(service.recorder, "flush", fenced_flush)
    monkeypatch.setattr(service.metrics_server, "stop", broken_stop)
    with capture_logs() as logs, pytest.raises(TimelineError) as raised:
        await service._close_started([])
    assert rejoin_reason(raised.value) == "fenced"
    assert "service_close_step_failed" in [e["event"] for e in logs]
    FileStore(settings.timeline_path).close()


async def test_a_failed_chunk_marks_the_service_stopping_before_the_gate_opens(tmp_path, monkeypatch):
    """A chunk failing fenced sets the stop before releasing the gate, so a waiting assignment restores nothing."""
    from aiokafka import TopicPartition

    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", runbooks_dir=tmp_path,
                        topics=["a"], changelog_topic="changelog")
    service = Service(settings, runbooks=[])
    assert service.fleet is not None
    service.fleet.owned.add(0)
    restored: list[Any] = []

    async def fenced_chunk(batch: Any) -> None:
        raise ReplicaFenced("changelog changelog[0]: fenced")

    async def fetch(partition: int) -> list[Any]:
        restored.append(partition)
        return []

    monkeypatch.setattr(service, "_handle_chunk", fenced_chunk)  # the chunk's work, whichever path (traced or not)
    monkeypatch.setattr(service.fleet, "fetch", fetch)
    tp = TopicPartition("a", 0)
    with pytest.raises(ReplicaFenced):
        await service._handle_batch({tp: [RawRecord(topic="a", value=b"{}")]})
    assert service._stop.is_set()
    await service._on_assigned([TopicPartition("a", 1)])
    assert (restored, service._restorers) == ([], {})
    await service.close_unstarted()
    service.recorder.close()


@pytest.mark.parametrize(("raised", "said"), [
    (ReplicaFenced("this replica was fenced 6 times within 3600 s"), "fenced 6 times"),
    (ExceptionGroup("loops", [ExceptionGroup("alerts", [  # from the loops' task groups (consumers.py)
        ConsumerRebuildsExhausted("the alerts consumer was rebuilt 5 times within 600 s")])]), "rebuilt 5 times"),
])
def test_run_exits_75_when_no_rejoin_is_left(monkeypatch, raised: BaseException, said: str):
    """`responder run` turns a final ReplicaFenced, or a consumer out of rebuilds, into one red line and exit 75."""
    async def fenced_for_good(build: Any, *, rejoins: int) -> None:
        raise raised

    monkeypatch.setattr("responder.service.serve_rejoining", fenced_for_good)
    monkeypatch.setenv("RESPONDER_KAFKA_BOOTSTRAP", "127.0.0.1:9")
    result = CliRunner().invoke(app, ["run"])
    assert result.exit_code == 75, result.output
    assert said in result.output
    assert "Traceback" not in result.output


async def test_a_stray_cancellation_in_the_teardown_does_not_hide_the_fence(tmp_path, monkeypatch):
    """A stray CancelledError from a client's stop in a fenced teardown is logged; run() still raises the fence."""
    async def stray_stop() -> None:
        raise asyncio.CancelledError

    service = fenced_service(tmp_path, monkeypatch, stray_stop)
    with capture_logs() as logs, pytest.raises(Exception) as raised:  # noqa: PT011 - a group: `fenced` reads it
        await service.run()
    assert rejoin_reason(raised.value) == "fenced"
    assert [e["error"] for e in logs if e["event"] == "service_close_failed"] == ["CancelledError: "]
    assert service.publisher.producer._closed  # the steps after the stray one ran
    await service.approvals.consumer.stop()


async def test_a_cancellation_asked_for_during_a_fenced_teardown_is_not_taken_for_a_stray_one(tmp_path, monkeypatch):
    """A task cancelled while its fenced service tears down makes run() raise CancelledError, not the fence."""
    stopping = asyncio.Event()

    async def slow_stop() -> None:
        stopping.set()
        await asyncio.sleep(60)

    service = fenced_service(tmp_path, monkeypatch, slow_stop)
    running = asyncio.create_task(service.run())
    await asyncio.wait_for(stopping.wait(), 10)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    await service.approvals.consumer.stop()


async def test_a_keyboard_interrupt_in_a_fenced_teardown_is_raised(tmp_path, monkeypatch):
    """A KeyboardInterrupt (or SystemExit) in the teardown of a fenced service is raised, not logged in place of it."""
    async def interrupted() -> None:
        raise KeyboardInterrupt

    service = fenced_service(tmp_path, monkeypatch, interrupted)
    with pytest.raises(KeyboardInterrupt):
        await service.run()
    await service.approvals.consumer.stop()


async def test_after_a_long_healthy_run_the_next_rejoin_waits_the_backoff_again(monkeypatch):
    """A service ready `HEALTHY_S` before its fence resets the rejoin delay to `backoff`; one ready 59 s does not."""
    clock = SimpleNamespace(now=1000.0)
    monkeypatch.setattr(rejoin_module, "time", SimpleNamespace(monotonic=lambda: clock.now))  # rejoin.py's only
    served: list[float | None] = [None, None, 61.0, 59.0]  # seconds each service is ready before its fence
    built: list[StandInService] = []

    class _Serving(StandInService):
        ready_since: float | None = None

        async def run(self) -> None:
            ready = served[len(built) - 1] if len(built) <= len(served) else None
            if ready is not None:
                self.ready_since = clock.now
                clock.now += ready
            await super().run()

    def build(previous: Any) -> Any:
        built.append(_Serving(fenced_error() if len(built) < len(served) else None))
        return built[-1]

    with capture_logs() as logs:
        await serve_rejoining(build, rejoins=10, backoff=0.001)
    assert len(built) == 5
    assert [e["in_s"] for e in logs if e["event"] == "replica_rejoining"] == [0.001, 0.002, 0.001, 0.002]
