"""`responder deadletter replay` sends each record again after a transient error (a leader election), as the service's
producers do (`resending`), and a replay whose send still fails stops there and says which dead letters were published
and which not (responder/ingest/deadletter.py, responder/cli/deadletter.py)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiokafka.errors import NotLeaderForPartitionError, RequestTimedOutError, TopicAuthorizationFailedError
from typer.testing import CliRunner

from responder.cli import app
from responder.ingest import deadletter
from responder.ingest.deadletter import ReplayResult, replay_deadletters
from tests.replay_kit import ReplayProducer, fake_replay


@pytest.fixture(name="fake_kafka")
def _fake_kafka(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The replay's clients faked: three dead letters (dlq:0:5..7), no ledger, a producer `install` sets."""
    return lambda producer: fake_replay(monkeypatch, producer)


async def test_a_leader_election_during_a_replay_is_waited_out(fake_kafka: Any) -> None:
    """The target's leader moves twice on the second record: it is sent again, every record published and noted."""
    producer = ReplayProducer({("alerts", 1): [NotLeaderForPartitionError(), NotLeaderForPartitionError()]})
    fake_kafka(producer)
    result = await replay_deadletters("127.0.0.1:1", "dlq", idle_seconds=0.05)
    assert result.replayed == 3
    assert result.failed is None
    assert [v for t, v in producer.sent if t == "alerts"] == [b"v5", b"v6", b"v7"]
    assert producer.client.refreshed == 2


async def test_a_replay_whose_send_still_fails_says_what_was_published_and_what_not(fake_kafka: Any) -> None:
    """A replay stopped by a refused send lists the first record published, the second failed, the third never sent."""
    producer = ReplayProducer({("alerts", 1): [TopicAuthorizationFailedError()]})
    fake_kafka(producer)
    result = await replay_deadletters("127.0.0.1:1", "dlq", idle_seconds=0.05)
    assert (result.published, result.failed, result.unnoted) == (["dlq:0:5 -> alerts"], "dlq:0:6", False)
    assert result.replayed == 1
    assert producer.sent == [("alerts", b"v5"), ("dlq.replayed", b"dlq:0:5")]


async def test_a_ledger_note_that_fails_says_the_record_reached_its_topic(fake_kafka: Any) -> None:
    """The first record is published but its ledger note refused: it is the failed one, marked as in its topic."""
    producer = ReplayProducer({("dlq.replayed", 0): [TopicAuthorizationFailedError()]})
    fake_kafka(producer)
    result = await replay_deadletters("127.0.0.1:1", "dlq", idle_seconds=0.05)
    assert (result.published, result.failed, result.unnoted) == ([], "dlq:0:5", True)


def test_the_command_lists_what_was_published_and_exits_1(monkeypatch: pytest.MonkeyPatch) -> None:
    """`deadletter replay` that stopped on a failed send: the published records listed, the failed one named, exit 1."""
    async def stopped(*_: Any, **__: Any) -> ReplayResult:
        return ReplayResult(scanned=2, replayed=1, published=["dlq:0:5 -> alerts"], failed="dlq:0:6",
                            error="TopicAuthorizationFailedError: refused")

    monkeypatch.setattr(deadletter, "replay_deadletters", stopped)
    result = CliRunner().invoke(app, ["deadletter", "replay", "--bootstrap", "127.0.0.1:1"])
    assert result.exit_code == 1, result.output
    assert "published dlq:0:5 -> alerts" in result.stdout
    assert "replay stopped at dead letter dlq:0:6 (TopicAuthorizationFailedError: refused): it was not published" \
        in " ".join(result.stderr.split())


async def test_a_send_that_timed_out_is_marked_as_maybe_in_its_topic(fake_kafka: Any,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The second record's send times out until the deadline: a timed-out send may land, so it is `uncertain`."""
    monkeypatch.setattr(deadletter, "SEND_DEADLINE", 0.2)
    producer = ReplayProducer({("alerts", 1): [RequestTimedOutError() for _ in range(100)]})
    fake_kafka(producer)
    result = await replay_deadletters("127.0.0.1:1", "dlq", idle_seconds=0.05)
    assert (result.failed, result.unnoted, result.uncertain) == ("dlq:0:6", False, True)


def test_the_command_does_not_say_a_timed_out_record_was_not_published(monkeypatch: pytest.MonkeyPatch) -> None:
    """A replay stopped by a timed-out send says the record may be in its topic, with `failed_reached_topic` null."""
    async def stopped(*_: Any, **__: Any) -> ReplayResult:
        return ReplayResult(scanned=2, replayed=1, failed="dlq:0:6", error="RequestTimedOutError", uncertain=True)

    monkeypatch.setattr(deadletter, "replay_deadletters", stopped)
    said = CliRunner().invoke(app, ["deadletter", "replay", "--bootstrap", "127.0.0.1:1"])
    assert said.exit_code == 1, said.output
    assert "its send timed out, so it may have reached its topic" in " ".join(said.stderr.split())
    assert "it was not published" not in " ".join(said.stderr.split())
    as_json = CliRunner().invoke(app, ["deadletter", "replay", "--bootstrap", "127.0.0.1:1", "--json"])
    assert orjson.loads(as_json.stdout)["failed_reached_topic"] is None


def test_a_replay_that_failed_nothing_says_no_failed_record_reached_a_topic(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--json` of a replay where every send went gives null for both `failed` and `failed_reached_topic`."""
    async def replayed(*_: Any, **__: Any) -> ReplayResult:
        return ReplayResult(scanned=1, replayed=1, published=["dlq:0:5 -> alerts"])

    monkeypatch.setattr(deadletter, "replay_deadletters", replayed)
    said = CliRunner().invoke(app, ["deadletter", "replay", "--bootstrap", "127.0.0.1:1", "--json"])
    assert said.exit_code == 0, said.output
    out = orjson.loads(said.stdout)
    assert (out["failed"], out["failed_reached_topic"]) == (None, None)
