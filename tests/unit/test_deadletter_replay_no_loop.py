"""A dead-letter replay never sends into the dead-letter topic or its ledger, which it reads: no endless loop."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from responder.cli import app
from responder.cli.output import EXIT_CONFIG
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
    """A copy whose `dlq.topic` is the dead-letter topic itself is counted own_topic, not sent back into it."""
    own = dead_letter(6, original=(0, 8))
    own = SimpleNamespace(**{**vars(own), "headers": [*own.headers, ("dlq.topic", b"dlq")]})
    producer = ReplayProducer()
    fake_replay(monkeypatch, producer, [dead_letter(5, original=(0, 7)), own], set())
    result = await replay_deadletters("127.0.0.1:1", "dlq", idle_seconds=0.05)
    assert (result.replayed, result.own_topic, result.unreplayable) == (1, 1, 0)
    assert producer.to("alerts") == [b"v7"]
    assert producer.to("dlq") == []


def _from(offset: int, origin: bytes, reason: bytes) -> SimpleNamespace:
    """Dead letter dlq:0:`offset` whose `dlq.topic` (its origin) is `origin`, dead-lettered for `reason`."""
    letter = dead_letter(offset, original=(0, offset), reason=reason)
    return SimpleNamespace(**{**vars(letter), "headers": [
        (k, origin if k == "dlq.topic" else v) for k, v in letter.headers]})


async def test_a_ledger_origin_dead_letter_is_counted_only_when_its_reason_is_chosen(monkeypatch):
    """Origins `dlq.replayed` and `dlq` are never sent; with --reason only the chosen reason's one is counted."""
    producer = ReplayProducer()
    letters = [_from(5, b"dlq.replayed", b"authentication"), _from(6, b"dlq", b"schema")]
    fake_replay(monkeypatch, producer, letters, set())
    result = await replay_deadletters("127.0.0.1:1", "dlq", reason="authentication", idle_seconds=0.05)
    assert (result.replayed, result.own_topic, result.unreplayable) == (0, 1, 0)
    assert producer.sent == []


def test_the_cli_exits_config_when_topic_is_the_dead_letter_topic(monkeypatch):
    """`deadletter replay --topic <the dead-letter topic>` exits EXIT_CONFIG (3) before connecting."""
    monkeypatch.setenv("RESPONDER_DEADLETTER_TOPIC", "dlq")
    said = CliRunner().invoke(app, ["deadletter", "replay", "--bootstrap", "127.0.0.1:1", "--topic", "dlq"])
    assert said.exit_code == EXIT_CONFIG == 3, said.output
    assert "without end" in " ".join(said.stderr.split())
