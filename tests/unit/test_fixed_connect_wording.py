"""The command-line tools' clients (an operator request, a dead-letter replay, a read to a topic's end, a publish)
and the timeline mirror wait a fixed time for Kafka: their BrokerUnreachable names that fixed wait (`fixed_wait`), as
the admin calls' does, not RESPONDER_KAFKA_CONNECT_TIMEOUT; a publish given that setting's wait names the setting; and
the client started before the other's start failed is stopped. A partition's restore (its transactional producer, its
changelog read) waits a fixed 30 s and says so too; a fleet member's changelog producer waits the setting and names
it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from structlog.testing import capture_logs

from responder.errors import BrokerUnreachable
from responder.fleet import FleetState
from responder.ingest import changelog, clients, deadletter, mirror, operator, reading, transactions
from responder.service import Service, running
from responder.settings import Settings
from tests.connect_kit import UNSET, Down, no_broker


@pytest.fixture(autouse=True, name="waits")
def _no_broker(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every client's start fails at once, its retries cut to 0.2 s (the wording is the fixed deadline's); the
    deadlines the clients were given are listed."""
    async def nothing(*_: Any, **__: Any) -> None:
        return None

    for module in (operator, deadletter):
        monkeypatch.setattr(module, "ensure_topics", nothing)
    waits = no_broker(monkeypatch, (operator, deadletter, reading, clients, mirror, changelog, transactions))
    monkeypatch.setattr(clients, "check_connection", nothing)
    monkeypatch.setattr(operator, "ReplyFilter", lambda *_: None)  # no request is read: none is sent
    return waits


async def test_an_operator_request_names_its_fixed_wait() -> None:
    """request_and_wait's BrokerUnreachable names its fixed 15 s wait, not the setting, which does not set it."""
    with pytest.raises(BrokerUnreachable) as raised:
        await operator.request_and_wait("127.0.0.1:9", "req", "rep", object(), "k", b"s", 1.0)  # type: ignore[arg-type]
    assert UNSET not in str(raised.value)
    assert "an operator request's fixed 15s deadline, not RESPONDER_KAFKA_CONNECT_TIMEOUT, sets the wait" in str(
        raised.value)


async def test_a_dead_letter_replay_ledger_names_its_fixed_wait() -> None:
    """The replay ledger's reader (`_ledger`) says the replay's fixed 15 s wait, not the setting."""
    with pytest.raises(BrokerUnreachable) as raised:
        await deadletter._ledger("127.0.0.1:9", "dlq.replayed", 0.1)
    assert UNSET not in str(raised.value)
    assert "a dead-letter replay's fixed 15s deadline, not RESPONDER_KAFKA_CONNECT_TIMEOUT, sets the wait" in str(
        raised.value)


async def test_a_dead_letter_replay_names_its_fixed_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """The replay's own reader and producer say the same fixed wait."""
    async def nothing(*_: Any, **__: Any) -> None:
        return None

    monkeypatch.setattr(deadletter, "check_connection", nothing)
    with pytest.raises(BrokerUnreachable) as raised:
        await deadletter.replay_deadletters("127.0.0.1:9", "dlq", force=True)
    assert UNSET not in str(raised.value)
    assert "a dead-letter replay's fixed 15s deadline" in str(raised.value)


class _Up(Down):
    """A client that starts."""

    async def start(self) -> None:
        return None


async def _operator_request() -> None:
    await operator.request_and_wait("k:1", "req", "rep", object(), "k", b"s", 1.0)  # type: ignore[arg-type]


async def _replay() -> None:
    await deadletter.replay_deadletters("k:1", "dlq", force=True)


@pytest.mark.parametrize(("module", "first", "run"), [
    (operator, "AIOKafkaProducer", _operator_request), (deadletter, "AIOKafkaConsumer", _replay),
], ids=["operator", "replay"])
async def test_a_client_started_before_another_failed_to_start_is_stopped(
        monkeypatch: pytest.MonkeyPatch, module: Any, first: str, run: Any) -> None:
    """The client started first is stopped when the other's start fails with BrokerUnreachable, not left running."""
    async def nothing(*_: Any, **__: Any) -> None:
        return None

    made: list[Down] = []

    def client(kind: type[Down]) -> Any:
        return lambda *a, **k: made.append(kind(*a, **k)) or made[-1]

    monkeypatch.setattr(deadletter, "check_connection", nothing)
    for name in ("AIOKafkaProducer", "AIOKafkaConsumer"):
        monkeypatch.setattr(module, name, client(_Up if name == first else Down))
    with pytest.raises(BrokerUnreachable):
        await run()
    assert sorted((type(c).__name__, c.stopped) for c in made) == [("Down", True), ("_Up", True)]


async def test_a_read_to_a_topic_s_end_names_its_fixed_wait() -> None:
    """`read_to_end` (`responder approvals pending`) waits at most 15 s for Kafka, whatever the setting: it says so."""
    with pytest.raises(BrokerUnreachable) as raised:
        await reading.read_to_end("127.0.0.1:9", "approvals", timeout=30.0)
    assert UNSET not in str(raised.value)
    assert "a topic read's fixed 15s deadline, not RESPONDER_KAFKA_CONNECT_TIMEOUT, sets the wait" in str(
        raised.value)


async def test_a_publish_names_its_fixed_wait_or_the_setting_it_was_given() -> None:
    """`publish` waits a fixed 15 s unless given the setting's wait (`responder events send`), and says which."""
    with pytest.raises(BrokerUnreachable) as fixed:
        await clients.publish("127.0.0.1:9", "alerts", [b"{}"])
    assert UNSET not in str(fixed.value)
    assert "a publish's fixed 15s deadline, not RESPONDER_KAFKA_CONNECT_TIMEOUT, sets the wait" in str(fixed.value)
    with pytest.raises(BrokerUnreachable) as set_by:
        await clients.publish("127.0.0.1:9", "alerts", [b"{}"], connect_timeout=7.0,
                              wait_set_by="RESPONDER_KAFKA_CONNECT_TIMEOUT")
    assert UNSET in str(set_by.value)


async def test_the_timeline_mirror_names_its_fixed_wait_as_fixed_wait_does() -> None:
    """A timeline mirror whose producer cannot start names its fixed wait in `fixed_wait`'s words."""
    mirrored = mirror.KafkaMirror("127.0.0.1:9", "timeline", retry_delay=0.001)
    await mirrored.producer.stop()  # the real one, never started
    mirrored.make_producer = Down  # type: ignore[assignment]
    mirrored.producer = Down()  # type: ignore[assignment]
    with capture_logs() as logs:
        task = asyncio.create_task(mirrored.run())
        async with asyncio.timeout(10):
            while mirrored.failing is None:
                await asyncio.sleep(0.01)
        mirrored.close()
        await task
    (said,) = [e for e in logs if e["event"] == "timeline_mirror_unavailable"]
    assert UNSET not in str(said["error"])
    assert "the timeline mirror's fixed 30s deadline, not RESPONDER_KAFKA_CONNECT_TIMEOUT, sets the wait" in str(
        said["error"])


async def test_a_fleet_member_s_changelog_producer_waits_the_setting_and_names_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, waits: list[float]) -> None:
    """A fleet member's changelog producer (`_prepare`) waits RESPONDER_KAFKA_CONNECT_TIMEOUT and names it."""
    async def nothing(*_: Any, **__: Any) -> None:
        return None

    monkeypatch.setattr(running, "check_connection", nothing)
    service = Service(Settings(kafka_bootstrap="127.0.0.1:9", timeline_path=tmp_path / "t.jsonl", dry_run=True,
                               runbooks_dir=tmp_path, topics=["a"], changelog_topic="changelog",
                               kafka_connect_timeout=7.0), runbooks=[])
    with pytest.raises(BrokerUnreachable) as raised:
        await service.run()
    assert waits == [7.0]
    assert UNSET in str(raised.value)


async def test_a_restore_s_transactional_producer_names_its_fixed_wait() -> None:
    """A restore's transactional producer waits a fixed 30 s, and the failed restore's reason says so."""
    log = changelog.Changelog("127.0.0.1:9", "changelog")
    log.txn = transactions.Transactions("127.0.0.1:9", "changelog", "group")
    fleet = FleetState(None, log)  # type: ignore[arg-type]  # a failed fetch touches no engine state
    assert await fleet.fetch(0) is None
    assert UNSET not in fleet.failed[0]
    assert "a transactional producer's fixed 30s deadline, not RESPONDER_KAFKA_CONNECT_TIMEOUT, sets the wait" in (
        fleet.failed[0])


class _Fenced(_Up):
    """A changelog producer whose fence is acknowledged at offset 0."""

    async def send_and_wait(self, *_: Any, **__: Any) -> Any:
        return SimpleNamespace(offset=0)


async def test_a_restore_s_changelog_read_names_its_fixed_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """A restore's changelog read waits a fixed 30 s, and the failed restore's reason says so, not the setting."""
    async def nothing(*_: Any, **__: Any) -> None:
        return None

    log = changelog.Changelog("127.0.0.1:9", "changelog")
    log.producer = _Fenced()  # type: ignore[assignment]
    monkeypatch.setattr(log, "ensure_partition", nothing)
    fleet = FleetState(None, log)  # type: ignore[arg-type]
    assert await fleet.fetch(0) is None
    assert UNSET not in fleet.failed[0]
    assert "a changelog read's fixed 30s deadline, not RESPONDER_KAFKA_CONNECT_TIMEOUT, sets the wait" in (
        fleet.failed[0])

