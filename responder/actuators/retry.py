"""The one retry policy: transient errors only, jittered exponential backoff, bounded by attempts and time."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from responder.errors import TransientActuationError

T = TypeVar("T")
log = structlog.get_logger(__name__)


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.warning("actuation_retried", attempt=state.attempt_number, error=str(exc))


def _log_first(exc: Exception) -> None:
    log.warning("actuation_retried", attempt=1, error=str(exc))


async def with_retries(
    fn: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    deadline: float,
    initial: float = 0.2,
    maximum: float = 5.0,
) -> T:
    """Call `fn`, retrying TransientActuationError up to `attempts` tries within `deadline` seconds."""
    if attempts <= 1:
        return await fn()
    started = time.monotonic()
    try:
        return await fn()  # the common case pays nothing for the retry machinery
    except TransientActuationError as exc:
        _log_first(exc)
    await asyncio.sleep(initial * (0.5 + random.random()))  # noqa: S311 - jitter, not crypto
    retrying = AsyncRetrying(
        retry=retry_if_exception_type(TransientActuationError),
        stop=stop_after_attempt(attempts - 1) | stop_after_delay(max(0.0, deadline - (time.monotonic() - started))),
        wait=wait_exponential_jitter(initial=initial * 2, max=maximum),
        before_sleep=_log_retry,
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await fn()
    raise AssertionError("unreachable")  # pragma: no cover
