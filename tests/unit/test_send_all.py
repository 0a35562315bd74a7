"""`send_all`: every send of a changelog write is waited for; the first failure is raised and no failed send is
left unobserved (aiokafka's "Future exception was never retrieved" after a fence)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import ProducerFenced

from responder.ingest.clients import send_all


class _Producer:
    """Each send returns a future that fails with ProducerFenced; the send after `refuse_at` raises at once."""

    def __init__(self, refuse_at: int | None = None) -> None:
        self.futures: list[asyncio.Future[Any]] = []
        self.refuse_at = refuse_at

    async def send(self, topic: str, value: bytes | None, *, key: bytes, partition: int) -> asyncio.Future[Any]:
        if self.refuse_at is not None and len(self.futures) == self.refuse_at:
            raise ProducerFenced()
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(fut.set_exception, ProducerFenced())
        self.futures.append(fut)
        return fut


@pytest.mark.parametrize("refuse_at", [None, 2])
async def test_every_failed_send_is_observed_and_the_first_failure_raised(refuse_at):
    """Three failing sends (or two, then a send that raises): ProducerFenced is raised, and no future is left
    with an exception nobody retrieved."""
    producer = _Producer(refuse_at)
    with pytest.raises(ProducerFenced):
        await send_all(producer, "changelog", [(b"k%d" % i, b"v") for i in range(3)], 0)  # type: ignore[arg-type]
    assert producer.futures
    assert all(f.done() and not f._log_traceback for f in producer.futures)


async def test_all_acked_returns():
    """Sends that are all acknowledged: nothing is raised."""
    class _Acks(_Producer):
        async def send(self, topic: str, value: bytes | None, *, key: bytes, partition: int) -> Any:
            fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            fut.set_result(None)
            return fut

    await send_all(_Acks(), "changelog", [(b"k", b"v"), (b"t", None)], 0)  # type: ignore[arg-type]
