"""`serve_rejoining` without Kafka: stand-in services whose run() ends as told, the errors a fenced or failed service
raises, a real service whose loops fail fenced, and what /readyz says between two services."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs
from typer.testing import CliRunner

from responder.cli.app import app
from responder.errors import TimelineError
from responder.errors_kafka import ReplicaFenced, TransactionFailed
from responder.service import Service, serve_rejoining
from responder.service.rejoin import _rejoining
from responder.service.rejoin import health_server as _health_server
from responder.settings import Settings

DIED = "changelog c[4] transaction failed: KafkaError: KafkaError: Unexpected error during batch delivery"


def health_settings(tmp_path: Any) -> Settings:
    """Settings of a service with a metrics server on a free port (no Kafka reached)."""
    return Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", runbooks_dir=tmp_path,
                    topics=["a"], metrics_host="127.0.0.1", metrics_port=0)


def fenced_error() -> BaseException:
    """What a fenced service's run() raises: a TimelineError from the changelog barrier, in nested task groups."""
    try:
        try:
            raise ReplicaFenced("changelog c[0]: this replica was fenced")
        except ReplicaFenced as exc:
            raise TimelineError("state changelog write failed") from exc
    except TimelineError as exc:
        return ExceptionGroup("run", [ExceptionGroup("alerts", [exc])])


class StandInService:
    """Stands in for `Service`: run() raises the next of `outcomes` (None: returns), request_stop() is recorded."""

    def __init__(self, outcome: BaseException | None, hold: asyncio.Event | None = None) -> None:
        self.outcome, self.hold, self.stopped = outcome, hold, False

    async def run(self) -> None:
        if self.hold is not None:
            await self.hold.wait()
        if self.outcome is not None:
            raise self.outcome

    def request_stop(self) -> None:
        self.stopped = True
        if self.hold is not None:
            self.hold.set()


def stand_in_builder(outcomes: list[BaseException | None]) -> tuple[Any, list[StandInService]]:
    """A `build` for `serve_rejoining` making a `StandInService` per outcome, in turn, and the list of those built."""
    built: list[StandInService] = []

    def build(previous: Any) -> Any:
        assert previous is (built[-1] if built else None)  # each rebuild is handed the fenced service
        built.append(StandInService(outcomes[len(built)]))
        return built[-1]

    return build, built


async def stopped_while_failing(failure: BaseException) -> tuple[int, list[str]]:
    """`serve_rejoining` over services whose run() asks for a stop (SIGTERM), then raises `failure`: how many it
    built, and the events it logged."""
    class _Stopped(StandInService):
        async def run(self) -> None:
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.sleep(0.05)  # the handler runs: a stop is asked for
            raise failure

    built: list[StandInService] = []

    def build(previous: Any) -> Any:
        built.append(_Stopped(None))
        return built[-1]

    with capture_logs() as logs:
        await serve_rejoining(build, rejoins=3, backoff=0.01)
    return len(built), [e["event"] for e in logs]


def fenced_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop: Any) -> Service:
    """A service whose loops fail fenced (through a TaskGroup, as on Python 3.11) and whose approvals stop is `stop`."""
    service = Service(Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl",
                               runbooks_dir=tmp_path, topics=["a"]), runbooks=[])

    async def writable() -> bool:
        return True

    async def loops_fenced() -> None:
        async def alerts() -> None:
            await asyncio.sleep(0)
            raise fenced_error().exceptions[0].exceptions[0]  # type: ignore[union-attr]

        async with asyncio.TaskGroup() as tg:
            tg.create_task(alerts())
            tg.create_task(asyncio.sleep(60))

    monkeypatch.setattr(service, "_writable_topics", writable)
    monkeypatch.setattr(service, "_consume_until_stopped", loops_fenced)
    monkeypatch.setattr(service.approvals, "stop", stop)
    return service


def lane_failed() -> BaseException:
    """As the CI replica's run() raised it: a lane's TransactionFailed in the loops' and the shippers' task groups."""
    return ExceptionGroup("run", [ExceptionGroup("loops", [TransactionFailed(DIED)])])


def readyz_while_rejoining(tmp_path: Any, reason: str) -> str:
    """What /readyz says between two services, the first of 5 rejoins done for `reason`."""
    health = _health_server(health_settings(tmp_path))
    assert health is not None
    _rejoining(health, 1, 5, 1.0, reason)
    return health.why() or ""


def run_failing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, error: BaseException) -> Any:
    """`responder run` (CliRunner's result) whose `serve_rejoining` ends with `error`, no Kafka reached."""
    for name in [n for n in os.environ if n.startswith("RESPONDER_")]:
        monkeypatch.delenv(name)
    for name, value in {"KAFKA_BOOTSTRAP": "127.0.0.1:9", "RUNBOOKS_DIR": str(tmp_path),
                        "TIMELINE_PATH": str(tmp_path / "t.jsonl"), "DRY_RUN": "true"}.items():
        monkeypatch.setenv(f"RESPONDER_{name}", value)

    async def serve(*args: Any, **kwargs: Any) -> None:
        raise error

    monkeypatch.setattr("responder.service.serve_rejoining", serve)
    return CliRunner().invoke(app, ["run"])


def run_rejoining(monkeypatch: pytest.MonkeyPatch, outcomes: list[BaseException | None], rejoins: int = 1,
                  ) -> tuple[Any, list[StandInService]]:
    """`responder run` (CliRunner's result) serving stand-in services that end with `outcomes` in turn, with
    `RESPONDER_FENCED_REJOINS=rejoins` and a short backoff; and the services built."""
    build, built = stand_in_builder(outcomes)
    monkeypatch.setattr("responder.service.rebuilds", lambda settings, **kwargs: build)
    monkeypatch.setattr("responder.service.serve_rejoining", functools.partial(serve_rejoining, backoff=0.001))
    monkeypatch.setenv("RESPONDER_KAFKA_BOOTSTRAP", "127.0.0.1:9")
    monkeypatch.setenv("RESPONDER_FENCED_REJOINS", str(rejoins))
    return CliRunner().invoke(app, ["run"]), built
