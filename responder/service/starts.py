"""A group consumer's start, bounded and ended by a stop request (docs/faults.md, the coordinator-death section).

aiokafka 0.14's `AIOKafkaConsumer.start()` of a subscribed group consumer waits for its first assignment without a
timeout: while the group's coordinator is never found (a broker up, the leader of the group's `__consumer_offsets`
partition down) it waits for ever, and before 2026-12-05 a rebuilt consumer (responder/service/consumers.py) sat in
it with `/readyz` 503 "rebuilding" for good, and SIGTERM could not end it either. `bounded` gives the start `seconds`
and watches the service's stop event: either one cancels it, and the half-started consumer is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog

from responder.errors_kafka import CoordinatorDied
from responder.ingest.clients import stop_consumer

log = structlog.get_logger(__name__)


async def bounded(consumer: Callable[[], Any], name: str, start: Callable[[], Awaitable[None]],
                  stop: asyncio.Event, seconds: float) -> bool:
    """Run `start()`: True once it returned; False when `stop` was set first; CoordinatorDied (naming the consumer
    `name`, a TimeoutError its cause: `timed_out`) when `seconds` passed first. In both latter cases the start is
    cancelled and the consumer it was starting (`consumer()`, closed whatever state the start left it in) closed: no
    consumer runs beside the next one, none is left unclosed. An error of `start()` itself is raised as it is."""
    starting = asyncio.ensure_future(start())
    stopped = asyncio.ensure_future(stop.wait())
    ended = False  # the start ended on its own, before a stop or the bound
    try:
        await asyncio.wait({starting, stopped}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        ended = starting.done()
    finally:  # cancelled ourselves too: the start goes with us
        stopped.cancel()
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # cancelled: its error is not the story
                await starting
            await _close(consumer(), name)
    if ended:
        starting.result()  # its own error, raised
        return True
    if stop.is_set():
        log.info("kafka_consumer_start_stopped", consumer=name, detail="a stop was requested: the start is "
                 "cancelled and the consumer closed")
        return False
    log.error("kafka_consumer_start_timed_out", consumer=name, timeout_s=seconds,
              detail="its group coordinator was not found, or the group not joined: the consumer is closed and "
                     "rebuilt, counted as a rebuild without progress")
    raise CoordinatorDied(name, TimeoutError(f"not started within {seconds:g} s: its group coordinator was not found, "
                                             "or the group not joined"))


def timed_out(exc: CoordinatorDied) -> bool:
    """Whether `exc` is a start that timed out (`bounded`), not a coordination task that died."""
    return isinstance(exc.cause, TimeoutError)


async def _close(consumer: Any, name: str) -> None:
    """Close a consumer whose start was cancelled (a no-op when the start's own clean-up closed it)."""
    try:
        await stop_consumer(consumer)
    except Exception as exc:  # noqa: BLE001 - it never started: its close failing leaves nothing to undo
        log.warning("kafka_consumer_close_failed", consumer=name, error=f"{type(exc).__name__}: {exc}")


async def all_started(starts: Sequence[Awaitable[bool]]) -> bool:
    """Run the starts together: whether every one started (False: a stop came first). When one fails, the others
    are cancelled (each closes its consumer) before its error is raised: none is left starting unwatched."""
    tasks = [asyncio.ensure_future(start) for start in starts]
    try:
        return all(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
