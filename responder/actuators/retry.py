"""The one retry policy: transient errors only, jittered exponential backoff, bounded by attempts and time."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog
from opentelemetry import trace
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from responder.actuators.base import ActuationResult
from responder.actuators.rebuilt import rebuild
from responder.errors import PermanentActuationError, TransientActuationError
from responder.tracing import active, span

T = TypeVar("T")
MAX_BACKOFF = 5.0  # seconds between retries, unless the deadline spreads them further (with_retries)
SETTLE_FIRST = 0.5  # seconds before the first re-read of a false verify() (VerifySettle), doubling after it
log = structlog.get_logger(__name__)
_SETTLING: ContextVar[Callable[[], Awaitable[None]] | None] = ContextVar("responder_settling", default=None)


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.warning("actuation_retried", attempt=state.attempt_number + 1, error=str(exc))  # the first ran before


def _log_first(exc: Exception) -> None:
    log.warning("actuation_retried", attempt=1, error=str(exc))
    if active():  # the first attempt runs without a span of its own: the step's span notes its failure
        trace.get_current_span().add_event("attempt_failed", {"responder.attempt": 1,
                                                              "error.type": str(getattr(exc, "code", "") or "")})


async def with_retries(
    fn: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    deadline: float,
    initial: float = 0.2,
    maximum: float | None = None,
    settled: Callable[[], Awaitable[T | None]] | None = None,
) -> T:
    """Call `fn`, retrying TransientActuationError up to `attempts` tries within `deadline` seconds.

    `settled` runs before every retry: a transient error may come after the call was applied (its reply was
    lost, or it timed out on our side while the API went on), so a non-None answer ends the retries with it
    instead of applying a second time.

    The backoff doubles up to `maximum`, by default 5 s or `deadline / (2 * attempts)` if that is longer, so a
    step with a long timeout spreads its attempts over it and outlasts a throttling window longer than
    its first retries (10 retries at a 5 s cap were all spent within 40 s of a 60 s throttle).
    """
    if attempts <= 1:
        return await fn()
    started = time.monotonic()
    try:
        return await fn()  # the common case pays nothing for the retry machinery
    except TransientActuationError as exc:
        first = exc
    return await retry_after(first, fn, attempts=attempts, deadline=deadline, started=started, initial=initial,
                             maximum=maximum, settled=settled)


async def retry_after(
    exc: TransientActuationError,
    fn: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    deadline: float,
    started: float,
    initial: float = 0.2,
    maximum: float | None = None,
    settled: Callable[[], Awaitable[T | None]] | None = None,
) -> T:
    """`with_retries` from its second attempt: the first (begun at `started`, `time.monotonic()`) raised `exc`.

    For a caller that makes the first attempt itself, so the common case builds no closure for the retries.
    """
    cap = maximum if maximum is not None else max(MAX_BACKOFF, deadline / (2 * attempts))
    _log_first(exc)
    await asyncio.sleep(initial * (0.5 + random.random()))  # noqa: S311  # nosec B311 # jitter, not crypto
    retrying = AsyncRetrying(
        retry=retry_if_exception_type(TransientActuationError),
        stop=stop_after_attempt(attempts - 1) | stop_after_delay(max(0.0, deadline - (time.monotonic() - started))),
        wait=wait_exponential_jitter(initial=initial * 2, max=cap),
        before_sleep=_log_retry,
        reraise=True,
    )
    async for attempt in retrying:
        number = attempt.retry_state.attempt_number + 1  # the first attempt ran above
        # each retry is its own span under the step's (its AWS calls below it), with `error.type` when it fails
        with attempt, span("retry", attributes={"responder.attempt": number}):
            if settled is not None:
                done = await settled()
                if done is not None:
                    log.info("actuation_settled_by_verify", attempt=number)
                    return done
            return await fn()
    raise AssertionError("unreachable")  # pragma: no cover


def settled_by_verify(actuator: Any, params: Any, ctx: Any) -> Callable[[], Awaitable[ActuationResult | None]]:
    """A `settled` check for `with_retries`: when `verify()` says the desired state holds, the lost attempt applied.

    The result says `changed` (an earlier attempt made the change), with the after-state read back by
    `observe()` and the outputs read back by `outputs_now()` (`rebuild`): the reply that carried them was lost, so
    `outputs_rebuilt` and `outputs_lost` say which could be read. A transient error while verifying is
    raised, so it costs an attempt and never leads to a second apply; only a definite "not there" (or a
    permanent error reading it) lets the retry apply again.
    """

    async def check() -> ActuationResult | None:
        try:
            ok = bool(await actuator.verify(params, ctx))
        except TimeoutError as exc:
            raise TransientActuationError("verify timed out", code="Timeout") from exc
        except PermanentActuationError:
            return None
        if not ok:
            return None
        try:  # the after-state the lost reply carried, read back, so undo's compare-and-set has it
            after = await actuator.observe(params, ctx) if hasattr(actuator, "observe") else None
        except (TransientActuationError, PermanentActuationError, TimeoutError):
            after = None
        rebuilt = await rebuild(actuator, params, ctx)
        return ActuationResult(changed=True, target=actuator.target(params), after=after or {}, **rebuilt.fields())

    return check


@dataclass(frozen=True)
class VerifySettle:
    """How long a `verify()` that reads false right after an apply is read again before it counts as false.

    AWS control planes are eventually consistent (a key deactivated or a policy attached may read back as before
    for a few seconds): the re-reads wait `SETTLE_FIRST` seconds, then twice as long each time, the last wait cut
    so the waits add up to `seconds`; 0 = one read. `sleep` and `clock` are injectable (tests count reads, never
    wall time).
    """

    seconds: float = 5.0
    first: float = SETTLE_FIRST
    sleep: Callable[[float], Awaitable[Any]] = field(default=asyncio.sleep, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    def waits(self) -> list[float]:
        """The wait before each re-read (5 s: 0.5, 1, 2, 1.5)."""
        waits, left, wait = [], self.seconds, self.first
        while left > 1e-6:
            waits.append(min(wait, left))
            left -= waits[-1]
            wait *= 2
        return waits


@contextlib.contextmanager
def settling(before: Callable[[], Awaitable[None]]) -> Iterator[None]:
    """Within the block (this task and the coroutines it awaits), `before` is awaited once a settle is about to wait
    (`settle_verify`): a caller holding what the waits must not hold (the fleet's exclusive gate) lets it go there."""
    token = _SETTLING.set(before)
    try:
        yield
    finally:
        _SETTLING.reset(token)


async def settle_verify(read: Callable[[], Awaitable[bool | None]], settle: VerifySettle) -> tuple[bool, int]:
    """Read a `verify()` that was just false again after each of the settle's waits, until it reads true: whether
    it did, and how many reads it took (the first, false one included). A read answering None cannot be made (a
    permanent error such as AccessDenied, a bug): no wait can help, so it ends there, false. No re-read starts once
    `settle.seconds` have passed since the first (slow reads count too: each is bounded by the AWS call timeout).
    The hook of an enclosing `settling` block is awaited before the first wait."""
    started, reads = settle.clock(), 1
    for wait in settle.waits():
        left = settle.seconds - (settle.clock() - started)
        if left <= 0:
            break
        if reads == 1 and (before := _SETTLING.get()) is not None:
            await before()
        await settle.sleep(min(wait, left))
        reads += 1
        got = await read()
        if got:
            log.info("verify_settled", reads=reads)
            return True, reads
        if got is None:
            log.warning("verify_unreadable", reads=reads)
            return False, reads
    log.warning("verify_unsettled", reads=reads, seconds=settle.seconds)
    return False, reads
