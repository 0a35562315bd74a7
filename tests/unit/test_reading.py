"""`read_to_end` (the operator commands' read of a fleet topic) turns Kafka's refusals into one clear error."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.errors import TopicAuthorizationFailedError

from responder.errors import BrokerUnreachable
from responder.ingest import reading


class _Refused:
    """A consumer that connects, then is refused the topic (an ACL)."""

    stopped = False

    def __init__(self, **_: Any) -> None:
        pass

    async def topics(self) -> set[str]:
        raise TopicAuthorizationFailedError()

    async def stop(self) -> None:
        _Refused.stopped = True


async def test_a_refused_read_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kafka refusing the read (not authorised) raises BrokerUnreachable naming the topic, and the consumer stops."""
    async def started(client: Any, deadline: float) -> None:
        return None

    monkeypatch.setattr(reading, "AIOKafkaConsumer", _Refused)
    monkeypatch.setattr(reading, "_start_with_retry", started)
    with pytest.raises(BrokerUnreachable, match="could not read requests at k:9: TopicAuthorizationFailedError"):
        await reading.read_to_end("k:9", "requests")
    assert _Refused.stopped


class _Unparsable(_Refused):
    """A consumer whose topic holds a record the client cannot parse (a header key that is not UTF-8)."""

    async def topics(self) -> set[str]:
        raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")


async def test_an_unparsable_record_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A record the Kafka client cannot parse raises BrokerUnreachable saying so, not a UnicodeDecodeError."""
    async def started(client: Any, deadline: float) -> None:
        return None

    monkeypatch.setattr(reading, "AIOKafkaConsumer", _Unparsable)
    monkeypatch.setattr(reading, "_start_with_retry", started)
    with pytest.raises(BrokerUnreachable, match="a record there cannot be parsed by the Kafka client"):
        await reading.read_to_end("k:9", "requests")
