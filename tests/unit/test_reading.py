"""`read_to_end` (the operator commands' read of a fleet topic) turns Kafka's refusals into one clear error."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.errors import TopicAuthorizationFailedError

from responder.errors import BrokerUnreachable, UnparsableRecord
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


class _Unparsable(_Refused):
    """A consumer whose topic holds a record neither the client nor the tolerant reader gets past."""

    async def topics(self) -> set[str]:
        raise UnparsableRecord("a record the Kafka client cannot parse stops this consumer")


@pytest.mark.parametrize(("consumer", "said"), [
    (_Refused, "could not read requests at k:9: TopicAuthorizationFailedError"),
    (_Unparsable, "could not read requests at k:9: a record the Kafka client cannot parse"),
])
async def test_a_failed_read_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, consumer: type, said: str) -> None:
    """An ACL refusal or an unparsable record raises BrokerUnreachable naming the topic, and the consumer stops."""
    async def started(client: Any, deadline: float, **_: Any) -> None:
        return None

    _Refused.stopped = False
    monkeypatch.setattr(reading, "AIOKafkaConsumer", consumer)
    monkeypatch.setattr(reading, "_start_with_retry", started)
    with pytest.raises(BrokerUnreachable, match=said):
        await reading.read_to_end("k:9", "requests")
    assert _Refused.stopped
