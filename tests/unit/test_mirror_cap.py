"""The timeline mirror under a long outage and the broker's refusals: its queue is capped (the oldest lines waiting
are dropped, counted, said once a burst); a batch refused as too large is sent again line by line so only the line
too large is dropped; a line refused for good for another reason is dropped after the deadline, not retried for ever
(responder/ingest/mirror.py)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import CorruptRecordException, MessageSizeTooLargeError, NotLeaderForPartitionError
from structlog.testing import capture_logs
from typer.testing import CliRunner

from responder.cli import app
from responder.ingest.mirror import KafkaMirror
from responder.metrics import Metrics
from tests.fakes import MetadataClient, until_done


class _Broker:
    """A fake producer whose sends are acknowledged together, as one batch, on the loop's next turn: the batch fails
    whole with `fail(values)`'s error when it returns one (a broker refusing it)."""

    def __init__(self, fail: Any) -> None:
        self.fail, self.client, self.log = fail, MetadataClient(), []
        self._batch: list[tuple[bytes, asyncio.Future[Any]]] = []
        self.batches: list[list[bytes]] = []

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, topic: str, value: bytes, *, key: bytes) -> asyncio.Future[Any]:
        ack: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if not self._batch:
            asyncio.get_running_loop().call_soon(self._answer)
        self._batch.append((value, ack))
        return ack

    def _answer(self) -> None:
        batch, self._batch = self._batch, []
        values = [v for v, _ in batch]
        self.batches.append(values)
        error = self.fail(values)
        for value, ack in batch:
            if error is None:
                self.log.append(value)
                ack.set_result(None)
            else:
                ack.set_exception(error)


class _LineBatches(_Broker):
    """As `_Broker`, but each line is a record batch of its own, answered alone (aiokafka builds one for a line above
    its batch size): a refusal fails that line only, the lines after it are acknowledged."""

    async def send(self, topic: str, value: bytes, *, key: bytes) -> asyncio.Future[Any]:
        ack = await super().send(topic, value, key=key)
        self._answer()
        return ack


async def _mirror(producer: _Broker, **kwargs: Any) -> tuple[KafkaMirror, asyncio.Task[None]]:
    mirror = KafkaMirror("127.0.0.1:1", "timeline", retry_delay=0.01, **kwargs)
    await mirror.producer.stop()
    mirror.producer = producer  # type: ignore[assignment]
    return mirror, asyncio.create_task(mirror.run())


async def _mirrored(producer: _Broker, lines: list[bytes], **kwargs: Any) -> KafkaMirror:
    """A mirror over `producer` given `lines`, run until each is sent or dropped, then closed."""
    mirror, task = await _mirror(producer, **kwargs)
    _accept(mirror, lines)
    await until_done(lambda: mirror.sent + mirror.dropped == len(lines))
    mirror.close()
    await task
    return mirror


def _accept(mirror: KafkaMirror, lines: list[bytes], first: int = 0) -> None:
    mirror.accept([(SimpleNamespace(writer="host:1", seq=first + n), line + b"\n")  # type: ignore[misc]
                   for n, line in enumerate(lines)])


async def test_a_full_queue_drops_its_oldest_lines_counted_and_said_once_a_burst() -> None:
    """A full mirror queue drops its oldest lines, counted in `responder_timeline_mirror_overflowed` and logged once."""
    down = True
    producer = _Broker(lambda values: NotLeaderForPartitionError() if down else None)
    with capture_logs() as logs:
        mirror, task = await _mirror(producer, max_pending=10)
        _accept(mirror, [b"0"])
        await until_done(lambda: producer.client.refreshed >= 1)  # line 0 failed: it is sent again, in flight or not
        _accept(mirror, [str(n).encode() for n in range(1, 12)], first=1)
        _accept(mirror, [str(n).encode() for n in range(12, 25)], first=12)
        assert mirror.pending == 10
        down = False
        await until_done(lambda: mirror.pending == 0)
        mirror.close()
        await task
    assert mirror.overflowed == 15
    assert Metrics(mirror=mirror).value("responder_timeline_mirror_overflowed") == 15
    assert producer.log[-10:][1:] == [str(n).encode() for n in range(16, 25)]  # the newest nine, after the oldest
    assert [e["event"] for e in logs].count("timeline_mirror_overflow") == 1


async def test_a_batch_refused_as_too_large_is_sent_line_by_line_dropping_only_the_large_one() -> None:
    """A batch refused as too large is resent line by line, so only the large line is dropped and the rest mirrored."""
    producer = _Broker(lambda values: MessageSizeTooLargeError() if b"huge" in values else None)
    with capture_logs() as logs:
        mirror = await _mirrored(producer, [b"1", b"2", b"huge", b"4", b"5"])
    assert producer.log == [b"1", b"2", b"4", b"5"]
    assert mirror.dropped == 1
    dropped = [e for e in logs if e["event"] == "timeline_mirror_line_dropped"]
    assert [e["seq"] for e in dropped] == [2]


async def test_a_line_refused_as_too_large_alone_is_dropped_and_the_lines_after_it_are_not_sent_twice() -> None:
    """A line refused as too large on its own is dropped, and the lines after it are not sent twice."""
    producer = _LineBatches(lambda values: MessageSizeTooLargeError() if values == [b"huge"] else None)
    mirror = await _mirrored(producer, [b"1", b"2", b"huge", b"4", b"5"])
    assert producer.log == [b"1", b"2", b"4", b"5"]
    assert (mirror.sent, mirror.dropped) == (4, 1)


async def test_a_line_refused_for_good_for_another_reason_is_dropped_after_the_deadline() -> None:
    """A line refused for good for another reason holds the rest only until the deadline, then is dropped."""
    producer = _Broker(lambda values: CorruptRecordException() if b"bad" in values else None)
    with capture_logs() as logs:
        await _mirrored(producer, [b"1", b"bad", b"3"], deadline=0.1)
    assert producer.log[-1] == b"3"
    assert b"bad" not in producer.log
    assert [e["seq"] for e in logs if e["event"] == "timeline_mirror_line_dropped"] == [1]


@pytest.mark.parametrize("value", ["0", "-5", "lots"])
def test_a_bad_mirror_cap_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """RESPONDER_TIMELINE_MIRROR_MAX_PENDING that is not a positive whole number: one line naming it, exit 3."""
    monkeypatch.setenv("RESPONDER_TIMELINE_MIRROR_MAX_PENDING", value)
    result = CliRunner().invoke(app, ["deadletter", "replay", "--bootstrap", "127.0.0.1:1"])
    assert result.exit_code == 3, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"✗ RESPONDER_TIMELINE_MIRROR_MAX_PENDING='{value}'")
