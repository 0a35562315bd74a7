"""A dead-letter replay never sends into the dead-letter topic or its ledger, which it reads: no endless loop."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from responder.errors import ConfigError
from responder.ingest.deadletter import replay_deadletters
from tests.replay_kit import ReplayProducer, dead_letter, fake_replay


@pytest.mark.parametrize("target", ["dlq", "dlq.replayed"])
async def test_replaying_into_the_dead_letter_topic_or_its_ledger_is_refused(monkeypatch, target):
    """`--topic` naming the topic the replay reads (or its ledger) is a ConfigError; nothing is sent."""
    producer = ReplayProducer()
    fake_replay(monkeypatch, producer, [dead_letter(5, original=(0, 7))], set())
    with pytest.raises(ConfigError, match="without end"):
        await replay_deadletters("127.0.0.1:1", "dlq", to_topic=target, idle_seconds=0.05)
    assert producer.sent == []


async def test_a_dead_letter_naming_the_dead_letter_topic_as_its_origin_is_not_replayed(monkeypatch):
    """A copy whose `dlq.topic` is the dead-letter topic itself is counted unreplayable, not sent back into it."""
    own = dead_letter(6, original=(0, 8))
    own = SimpleNamespace(**{**vars(own), "headers": [*own.headers, ("dlq.topic", b"dlq")]})
    producer = ReplayProducer()
    fake_replay(monkeypatch, producer, [dead_letter(5, original=(0, 7)), own], set())
    result = await replay_deadletters("127.0.0.1:1", "dlq", idle_seconds=0.05)
    assert (result.replayed, result.unreplayable) == (1, 1)
    assert producer.to("alerts") == [b"v7"]
    assert producer.to("dlq") == []
