"""Kafka clients no broker answers, for the tests of what a start that never reaches Kafka says (BrokerUnreachable
names what sets its wait: RESPONDER_KAFKA_CONNECT_TIMEOUT, or a fixed deadline)."""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError

from responder.ingest import clients

UNSET = "RESPONDER_KAFKA_CONNECT_TIMEOUT sets the wait"


class Down:
    """A client whose bootstrap no broker answers."""

    def __init__(self, *_: Any, **__: Any) -> None:
        self.stopped = False

    async def start(self) -> None:
        raise KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 9)]")

    async def stop(self) -> None:
        self.stopped = True


def no_broker(monkeypatch: pytest.MonkeyPatch, modules: Iterable[ModuleType]) -> list[float]:
    """The aiokafka clients `modules` make are `Down`, and their starts' retries cut to 0.2 s (the message keeps the
    deadline they were given); the deadlines given, in order."""
    real = clients._start_with_retry
    waits: list[float] = []

    async def quick(client: Any, deadline: float, **kwargs: Any) -> None:
        waits.append(deadline)
        await real(client, 0.2, **kwargs)

    for module in modules:
        monkeypatch.setattr(module, "_start_with_retry", quick)
        monkeypatch.setattr(module, "AIOKafkaProducer", Down, raising=False)
        monkeypatch.setattr(module, "AIOKafkaConsumer", Down, raising=False)
    return waits
