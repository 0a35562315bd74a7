"""`send_all`: the first failure is raised; cut short, the acks not in are cancelled and the failed ones retrieved, so
asyncio has nothing to log ("Future exception was never retrieved" after a fence)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import ProducerFenced

from responder.ingest.clients import send_all
from tests.txn_kit import loop_complaints


def _fail(fut: asyncio.Future[Any]) -> None:
    """Fail `fut` with ProducerFenced, unless it is done (cancelled by `send_all` when it was cut short)."""
    if not fut.done():
        fut.set_exception(ProducerFenced())


class _Producer:
    """Each send returns a future that fails with ProducerFenced; the send after `refuse_at` raises at once."""

    def __init__(self, refuse_at: int | None = None) -> None:
        self.futures: list[asyncio.Future[Any]] = []
        self.refuse_at = refuse_at

    async def send(self, topic: str, value: bytes | None, *, key: bytes, partition: int) -> asyncio.Future[Any]:
        if self.refuse_at is not None and len(self.futures) == self.refuse_at:
            raise ProducerFenced()
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(_fail, fut)
        self.futures.append(fut)
        return fut


class _Stuck:
    """The first send's ack has failed already, the second's never comes, the third send never queues its record."""

    def __init__(self) -> None:
        self.futures: list[asyncio.Future[Any]] = []
        self.queueing = asyncio.Event()  # set when the third send waits
        self.never = asyncio.Event()

    async def send(self, topic: str, value: bytes | None, *, key: bytes, partition: int) -> asyncio.Future[Any]:
        if len(self.futures) == 2:
            self.queueing.set()
            await self.never.wait()
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if not self.futures:
            fut.set_exception(ProducerFenced())
        self.futures.append(fut)
        return fut


_RECORDS = [(b"k%d" % i, b"v") for i in range(3)]


@pytest.mark.parametrize("refuse_at", [None, 2])
async def test_the_first_failure_is_raised_and_no_ack_is_left_unobserved(refuse_at):
    """Three failed acks, or two pending then a send that raises: ProducerFenced, and asyncio is told of nothing."""
    producer = _Producer(refuse_at)
    with loop_complaints() as said:
        with pytest.raises(ProducerFenced):
            await send_all(producer, "changelog", _RECORDS, 0)  # type: ignore[arg-type]
        await asyncio.sleep(0.01)  # the fake's queued failures run
    assert said == []
    assert len(producer.futures) == (refuse_at or 3)
    if refuse_at is None:  # all three waited for, each failure retrieved
        assert all(f.done() and not f.cancelled() and not f._log_traceback for f in producer.futures)
    else:  # cut by the send that raised: the acks not in are cancelled, not waited for
        assert all(f.cancelled() for f in producer.futures)


async def test_a_send_that_never_queues_is_cut_at_within():
    """A send stuck queueing: TimeoutError at `within`, the failed earlier ack retrieved, the pending one cancelled."""
    producer = _Stuck()
    with loop_complaints() as said:
        task = asyncio.create_task(send_all(producer, "changelog", _RECORDS, 0, within=0.05))  # type: ignore[arg-type]
        done, _ = await asyncio.wait([task], timeout=1.0)
        assert task in done  # not still queueing
        with pytest.raises(TimeoutError):
            task.result()
    assert said == []
    failed, pending = producer.futures
    assert failed.done()
    assert not failed.cancelled()
    assert not failed._log_traceback
    assert pending.cancelled()


async def test_a_cancel_while_queueing_is_raised_as_a_cancel_with_the_acks_queued():
    """A cancel from outside while a record queues: CancelledError, not TimeoutError; `acks` has the two queued."""
    producer = _Stuck()
    acks: list[asyncio.Future[Any]] = []
    with loop_complaints() as said:
        task = asyncio.create_task(send_all(producer, "changelog", _RECORDS, 0,  # type: ignore[arg-type]
                                            within=10.0, acks=acks))
        await asyncio.wait_for(producer.queueing.wait(), 1.0)
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=1.0)
        assert task in done  # not waiting for the acks queued
        with pytest.raises(asyncio.CancelledError):
            task.result()
    assert said == []
    assert len(acks) == len(producer.futures) == 2
    assert not acks[0].cancelled()
    assert not acks[0]._log_traceback
    assert acks[1].cancelled()


async def test_all_acked_returns():
    """Sends that are all acknowledged: nothing is raised."""
    class _Acks(_Producer):
        async def send(self, topic: str, value: bytes | None, *, key: bytes, partition: int) -> Any:
            fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            fut.set_result(None)
            return fut

    await send_all(_Acks(), "changelog", [(b"k", b"v"), (b"t", None)], 0)  # type: ignore[arg-type]
