"""The one retry policy: transient errors only, jittered exponential backoff, bounded by attempts and time."""

from __future__ import annotations

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


async def with_retries(
    fn: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    deadline: float,
    initial: float = 0.2,
    maximum: float = 5.0,
) -> T:
    """Call `fn`, retrying TransientActuationError up to `attempts` tries within `deadline` seconds."""
    retrying = AsyncRetrying(
        retry=retry_if_exception_type(TransientActuationError),
        stop=stop_after_attempt(max(1, attempts)) | stop_after_delay(deadline),
        wait=wait_exponential_jitter(initial=initial, max=maximum),
        before_sleep=_log_retry,
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await fn()
    raise AssertionError("unreachable")  # pragma: no cover
