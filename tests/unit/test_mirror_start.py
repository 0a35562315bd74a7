"""The timeline's Kafka mirror whose producer cannot start (no broker answers, an ACL): said once, never failing the
service, its lines queued (capped) while a new producer is started after a backoff, then sent in order; a close
before any started ends `run` at once, saying how many lines were left (responder/ingest/mirror.py)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiokafka.errors import ClusterAuthorizationFailedError, KafkaConnectionError
from structlog.testing import capture_logs

from responder.ingest.mirror import KafkaMirror
from tests.fakes import MirrorProducer, until_done

_DOWN = KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 1)]")


class _Starting(MirrorProducer):
    """A producer whose `start()` raises `error` (None: it starts) or, with `hang`, never returns; `stopped` once
    closed."""

    def __init__(self, error: BaseException | None, hang: bool) -> None:
        super().__init__([])
        self.error, self.hang, self.stopped = error, hang, False

    async def start(self) -> None:
        if self.hang:
            await asyncio.Event().wait()
        if self.error is not None:
            raise self.error

    async def stop(self) -> None:
        self.stopped = True


async def _mirror(errors: list[BaseException | None], *, hang: bool = False, retry_delay: float = 0.001,
                  max_pending: int = 100) -> tuple[KafkaMirror, list[_Starting]]:
    """A mirror whose producers' starts fail with `errors` in turn (each one after them starts), all of them made."""
    made: list[_Starting] = []

    def make() -> _Starting:
        made.append(_Starting(errors[len(made)] if len(made) < len(errors) else None, hang))
        return made[-1]

    mirror = KafkaMirror("127.0.0.1:1", "timeline", retry_delay=retry_delay, max_pending=max_pending)
    await mirror.producer.stop()  # the real one, never started
    mirror.connect_timeout = 0.0  # one attempt per start: no retry within it
    mirror.make_producer = make  # type: ignore[assignment]
    mirror.producer = make()  # type: ignore[assignment]
    return mirror, made


def _accept(mirror: KafkaMirror, *seqs: int) -> None:
    mirror.accept([(SimpleNamespace(writer="host:1", seq=seq), b"%d\n" % seq) for seq in seqs])  # type: ignore[misc]


async def _run_until_sent(mirror: KafkaMirror, lines: int) -> None:
    """Run the mirror until it sent `lines` lines, then close it and let `run` end."""
    task = asyncio.create_task(mirror.run())
    await until_done(lambda: mirror.sent == lines)
    mirror.close()
    await task


def _events(logs: list[dict[str, object]], name: str) -> list[dict[str, object]]:
    return [e for e in logs if e["event"] == name]


async def test_a_producer_that_cannot_start_is_replaced_until_one_does_and_the_lines_go_in_order() -> None:
    """While no producer starts, `run` makes new ones, logs `timeline_mirror_unavailable` once, then sends in order."""
    with capture_logs() as logs:
        mirror, made = await _mirror([_DOWN, _DOWN])
        _accept(mirror, 0, 1)
        task = asyncio.create_task(mirror.run())
        await until_done(lambda: len(made) >= 2)
        _accept(mirror, 2)
        await until_done(lambda: mirror.sent == 3)
        mirror.close()
        await task
    assert made[-1].log == [b"0", b"1", b"2"]
    assert len(made) == 3
    assert mirror.producer is made[2]
    assert [p.stopped for p in made[:2]] == [True, True]
    unavailable = _events(logs, "timeline_mirror_unavailable")
    assert [(e["log_level"], "BrokerUnreachable" in str(e["error"])) for e in unavailable] == [("error", True)]
    assert len(_events(logs, "timeline_mirror_recovered")) == 1
    assert mirror.failing is None


async def test_a_start_refused_by_an_acl_is_tried_again_not_given_up() -> None:
    """A producer start refused by an ACL is retried on a new producer, and lines are mirrored once granted."""
    with capture_logs() as logs:
        mirror, made = await _mirror([ClusterAuthorizationFailedError()])
        _accept(mirror, 0, 1)
        await _run_until_sent(mirror, 2)
    assert made[-1].log == [b"0", b"1"]
    assert len(_events(logs, "timeline_mirror_unavailable")) == 1


async def test_lines_queued_while_no_producer_starts_are_capped_and_counted() -> None:
    """While no producer starts, the queue keeps `max_pending` lines, dropping and counting the oldest."""
    with capture_logs() as logs:
        errors: list[BaseException | None] = [_DOWN] * 10**6
        mirror, made = await _mirror(errors, max_pending=2)
        task = asyncio.create_task(mirror.run())
        await until_done(lambda: mirror.failing is not None)
        _accept(mirror, 0, 1, 2, 3)
        errors.clear()  # Kafka is back: the next producer starts
        await until_done(lambda: mirror.sent == 2)
        mirror.close()
        await task
    assert made[-1].log == [b"2", b"3"]
    assert mirror.overflowed == 2
    overflow = _events(logs, "timeline_mirror_overflow")
    assert len(overflow) == 1
    assert "BrokerUnreachable" in str(overflow[0]["failing"])


@pytest.mark.parametrize("hang", [False, True], ids=["backing-off", "starting"])
async def test_a_close_before_any_producer_started_ends_run_at_once(hang: bool) -> None:
    """A close before any producer started ends `run` at once, logging `timeline_mirror_closed_unstarted`."""
    with capture_logs() as logs:
        mirror, made = await _mirror([_DOWN] * 100, hang=hang, retry_delay=60.0)
        _accept(mirror, 0, 1, 2)
        task = asyncio.create_task(mirror.run())
        await until_done(lambda: bool(_events(logs, "timeline_mirror_unavailable")) or (hang and bool(made)))
        await asyncio.sleep(0.01)  # the start under way
        mirror.close()
        async with asyncio.timeout(5):  # a hang guard: the backoff is a minute, a hung start for ever
            await task
    assert all(producer.stopped for producer in made)
    closed = _events(logs, "timeline_mirror_closed_unstarted")
    assert [e["pending"] for e in closed] == [3]
    assert made[-1].log == []


async def test_the_mirrors_restarts_do_not_warn_of_each_failed_attempt_and_name_its_own_wait() -> None:
    """Only the mirror's first start warns `kafka_connect_failed`; BrokerUnreachable names the mirror's own wait."""
    with capture_logs() as logs:
        mirror, made = await _mirror([_DOWN] * 3)
        mirror.connect_timeout = 0.15  # a retry or more within each start (each logged)
        task = asyncio.create_task(mirror.run())
        async with asyncio.timeout(20):  # three starts of up to 0.15 s plus a jittered retry sleep of up to 1.1 s
            while len(made) < 4:
                await asyncio.sleep(0.01)
        mirror.close()
        await task
    events = [(e["event"], e["log_level"]) for e in logs]
    said = events.index(("timeline_mirror_unavailable", "error"))
    warned = [i for i, event in enumerate(events) if event == ("kafka_connect_failed", "warning")]
    assert warned, events  # the first start's, as any client's
    assert max(warned) < said, events
    error = str(_events(logs, "timeline_mirror_unavailable")[0]["error"])
    assert "the timeline mirror's fixed 0.15s deadline, not RESPONDER_KAFKA_CONNECT_TIMEOUT, sets the wait" in error
    assert "RESPONDER_KAFKA_CONNECT_TIMEOUT sets the wait" not in error


async def test_a_cancel_while_a_closed_mirror_ends_its_start_is_raised_not_swallowed() -> None:
    """A cancel while a closed mirror ends its hanging producer start is raised by `run`, not swallowed."""
    closing, release = asyncio.Event(), asyncio.Event()

    class _SlowClose(_Starting):
        async def stop(self) -> None:  # what the cancelled start's clean-up awaits
            closing.set()
            await release.wait()
            await super().stop()

    mirror = KafkaMirror("127.0.0.1:1", "timeline", retry_delay=60.0)
    await mirror.producer.stop()  # the real one, never started
    mirror.producer = _SlowClose(None, hang=True)  # type: ignore[assignment]
    task = asyncio.create_task(mirror.run())
    await asyncio.sleep(0.01)  # its start under way, hanging
    mirror.close()
    async with asyncio.timeout(5):
        await closing.wait()  # the close cancelled the start, whose clean-up now closes the producer
    task.cancel()
    await asyncio.sleep(0.01)
    release.set()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(5):
            await task
    assert task.cancelled()


async def test_a_stray_cancellation_out_of_a_start_is_one_more_failed_start() -> None:
    """A stray CancelledError out of a producer's start is retried on a new producer, not taken for a close."""
    with capture_logs() as logs:
        mirror, made = await _mirror([asyncio.CancelledError()])
        _accept(mirror, 0, 1)
        await _run_until_sent(mirror, 2)
    assert made[-1].log == [b"0", b"1"]
    assert len(made) == 2
    assert made[0].stopped
    unavailable = _events(logs, "timeline_mirror_unavailable")
    assert ["CancelledError" in str(e["error"]) for e in unavailable] == [True]
    assert not _events(logs, "timeline_mirror_closed_unstarted")


async def test_a_cancel_of_the_mirrors_task_during_a_start_is_raised() -> None:
    """Cancelling the mirror's `run` while a start hangs ends the task cancelled and the producer closed."""
    mirror, made = await _mirror([], hang=True, retry_delay=60.0)
    task = asyncio.create_task(mirror.run())
    await until_done(lambda: bool(made))
    await asyncio.sleep(0.01)  # the start under way, hanging
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(5):
            await task
    assert len(made) == 1
    assert made[0].stopped


async def test_the_start_backoff_doubles_from_the_retry_delay_and_caps_at_30_s() -> None:
    """The mirror waits `retry_delay` between failed starts, doubled each time up to 30 s (`START_BACKOFF_MAX`)."""
    mirror, made = await _mirror([_DOWN] * 8, retry_delay=1.0)
    waits: list[float] = []

    async def backoff(delay: float) -> bool:
        waits.append(delay)
        return False

    mirror._backoff = backoff  # type: ignore[method-assign]
    _accept(mirror, 0)
    await _run_until_sent(mirror, 1)
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert len(made) == 9
