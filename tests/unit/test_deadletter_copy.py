"""Dead-letter copies always fit, and a copy that cannot be sent falls back to the minimal record."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NodeNotReadyError,
    NotLeaderForPartitionError,
    RequestTimedOutError,
    TopicAuthorizationFailedError,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from responder.errors import TopicRefused
from responder.ingest.deadletter import original_time
from responder.ingest.dlq import full_copy, header_text, minimal_copy
from responder.ingest.kafka import KafkaIngest
from responder.models.event import RawRecord


def _record(value: bytes, headers: tuple[tuple[str, bytes], ...] = (), key: bytes | None = b"k") -> RawRecord:
    return RawRecord(topic="alerts", partition=2, offset=41, key=key, value=value, headers=headers)


@settings(max_examples=60, deadline=None)
@given(value=st.integers(0, 1_200_000), n_headers=st.integers(0, 30), header_size=st.integers(0, 60_000),
       key_size=st.integers(0, 10_000), limit=st.integers(8_192, 1_000_000))
def test_full_copy_always_fits_the_limit(value: int, n_headers: int, header_size: int, key_size: int,
                                         limit: int) -> None:
    """Whatever the sizes of value, headers and key, the copy fits and still names the original's digest."""
    raw = b"X" * value
    record = _record(raw, tuple((f"h{i}", b"y" * header_size) for i in range(n_headers)), b"k" * key_size)
    copy = full_copy(record, "not_json", "d" * 5000, 1, limit)
    assert copy.size <= limit
    assert dict(copy.headers)["dlq.sha256"] == hashlib.sha256(raw).hexdigest().encode()
    assert raw.startswith(copy.value)


@pytest.mark.parametrize(("stamp", "header"), [(1_795_000_000_000, b"1795000000000"), (None, None), (-1, None),
                                               (2**62, None)])
def test_the_copy_keeps_the_original_broker_time_for_replay(stamp: int | None, header: bytes | None) -> None:
    """Full and minimal dead-letter copies keep the broker time in `dlq.timestamp`, which replay reads back."""
    record = RawRecord(topic="alerts", partition=2, offset=41, value=b"{}", timestamp_ms=stamp)
    for copy in (full_copy(record, "validation", "d", 1), minimal_copy(record, "validation", "d", 1, "e")):
        assert dict(copy.headers).get("dlq.timestamp") == header
        assert original_time(copy.headers) == (stamp if header else None)
    for forged in (b"-5", b"1e9", b"\xd9\xa1", b"", b"99999999999999999999"):
        assert original_time([("dlq.timestamp", forged)]) is None


def test_a_dead_letter_header_is_read_as_its_last_occurrence_in_text() -> None:
    """A copy's header reads back as its last occurrence, a bad byte replaced, None when absent; its time likewise."""
    headers = [("dlq.reason", b"internal"), ("dlq.timestamp", b"1795000000000"), ("dlq.reason", b"auth\xff"),
               ("dlq.timestamp", b"1795000000001")]
    assert header_text(headers, "dlq.reason") == "auth\ufffd"
    assert header_text(headers, "dlq.timestamp") == "1795000000001"
    assert header_text(headers, "dlq.topic") is None
    assert header_text([("dlq.topic", b"")], "dlq.topic") == ""
    assert original_time(headers) == 1_795_000_000_001


class _Producer:
    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.sent: list[tuple[bytes, list[tuple[str, bytes]]]] = []

    async def send_and_wait(self, topic: str, value: bytes, key: Any = None, headers: Any = (),
                            partition: int | None = None) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append((value, list(headers)))


async def _ingest(producer: _Producer, monkeypatch: pytest.MonkeyPatch) -> KafkaIngest:
    ingest = KafkaIngest("127.0.0.1:1", ["alerts"], "g", "dlq")
    ingest.deadletter_deadline = 30.0  # four transient failures wait 0.1 + 0.2 + 0.4 s plus up to 1 s of jitter
    # each before the fourth fails: 3.0 s (as before 2026-12-06) failed about one run in twenty (CI did)
    await ingest.consumer.stop()  # never started: these tests only dead-letter (no "Unclosed" warning at GC)
    await ingest.producer.stop()
    ingest.producer = producer
    return ingest


async def test_a_refused_copy_becomes_the_minimal_record(monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy the broker refuses as too large is replaced by reason, digest and coordinates; no exception."""
    producer = _Producer([MessageSizeTooLargeError()])
    ingest = await _ingest(producer, monkeypatch)
    await ingest.deadletter(_record(b"X" * 1000, (("h", b"v"),)), "not_json", "bad")
    [(value, headers)] = producer.sent
    names = dict(headers)
    assert value == b""
    assert (names["dlq.offset"], names["dlq.partition"], names["dlq.reason"]) == (b"41", b"2", b"not_json")
    assert names["dlq.sha256"] == hashlib.sha256(b"X" * 1000).hexdigest().encode()
    assert "h" not in names
    assert "dlq.minimal" in names


async def test_a_leader_election_longer_than_three_sends_dead_letters_the_full_copy(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Four transient send errors then an answer resend the full dead-letter copy until taken, never the minimal."""
    producer = _Producer([NodeNotReadyError(), NotLeaderForPartitionError(), RequestTimedOutError(),
                          KafkaTimeoutError()])
    ingest = await _ingest(producer, monkeypatch)
    with capture_logs() as logs:
        await ingest.deadletter(_record(b"{", (("h", b"v"),)), "not_json", "bad")
    [(value, headers)] = producer.sent
    assert (value, dict(headers)["h"]) == (b"{", b"v")
    assert "dlq.minimal" not in dict(headers)
    assert [e["event"] for e in logs].count("kafka_send_retried") == 4


async def test_a_broker_gone_past_the_deadline_raises_and_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A broker unreachable past the deadline raises the last error, logs `deadletter_unsent` once, sends nothing."""
    producer = _Producer([KafkaConnectionError()] * 1000)
    ingest = await _ingest(producer, monkeypatch)
    ingest.deadletter_deadline = 0.3
    with capture_logs() as logs, pytest.raises(KafkaConnectionError):
        await ingest.deadletter(_record(b"{"), "not_json", "bad")
    assert producer.sent == []
    [unsent] = [e for e in logs if e["event"] == "deadletter_unsent"]
    assert "alerts[2] offset 41 stays uncommitted" in unsent["detail"]
    assert not [e for e in logs if e["event"] == "deadletter_copy_failed"]


async def test_an_acl_refusing_the_topic_is_said_at_the_first_send(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dead-letter topic the ACLs refuse is named at the first failing send, with the grant to make; no retries."""
    producer = _Producer([TopicAuthorizationFailedError()] * 6)
    ingest = await _ingest(producer, monkeypatch)
    with capture_logs() as logs, pytest.raises(TopicRefused, match=r"dead-letter topic 'dlq'.*WRITE"):
        await ingest.deadletter(_record(b"{"), "not_json", "bad")
    assert len(producer.failures) == 5  # one send: retrying, or a minimal copy, cannot pass an ACL
    [refused] = [e for e in logs if e["event"] == "deadletter_topic_refused"]
    assert "alerts[2] offset 41 stays uncommitted" in refused["detail"]
