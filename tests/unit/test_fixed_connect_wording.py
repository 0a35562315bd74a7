"""The command-line tools' clients (an operator request, a dead-letter replay) wait a fixed 15 s for Kafka: their
BrokerUnreachable names that fixed wait, as the admin calls' does, not RESPONDER_KAFKA_CONNECT_TIMEOUT; and the
client started before the other's start failed is stopped."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError

from responder.errors import BrokerUnreachable
from responder.ingest import clients, deadletter, operator

UNSET = "RESPONDER_KAFKA_CONNECT_TIMEOUT sets the wait"


class _Down:
    """A client whose bootstrap no broker answers."""

    def __init__(self, *_: Any, **__: Any) -> None:
        self.stopped = False

    async def start(self) -> None:
        raise KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 9)]")

    async def stop(self) -> None:
        self.stopped = True


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every client's start fails at once, its retries cut to 0.2 s (the wording is the fixed deadline's)."""
    real = clients._start_with_retry

    async def quick(client: Any, _deadline: float, **kwargs: Any) -> None:
        await real(client, 0.2, **kwargs)

    async def nothing(*_: Any, **__: Any) -> None:
        return None

    for module in (operator, deadletter):
        monkeypatch.setattr(module, "_start_with_retry", quick)
        monkeypatch.setattr(module, "ensure_topics", nothing)
        monkeypatch.setattr(module, "AIOKafkaProducer", _Down)
        monkeypatch.setattr(module, "AIOKafkaConsumer", _Down)
    monkeypatch.setattr(operator, "ReplyFilter", lambda *_: None)  # no request is read: none is sent


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


class _Up(_Down):
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
    """The client started first (an operator request's producer, a replay's consumer) is stopped when the other's
    start fails, not left running (its connections and tasks) behind the BrokerUnreachable."""
    async def nothing(*_: Any, **__: Any) -> None:
        return None

    made: list[_Down] = []

    def client(kind: type[_Down]) -> Any:
        return lambda *a, **k: made.append(kind(*a, **k)) or made[-1]

    monkeypatch.setattr(deadletter, "check_connection", nothing)
    for name in ("AIOKafkaProducer", "AIOKafkaConsumer"):
        monkeypatch.setattr(module, name, client(_Up if name == first else _Down))
    with pytest.raises(BrokerUnreachable):
        await run()
    assert sorted((type(c).__name__, c.stopped) for c in made) == [("_Down", True), ("_Up", True)]
