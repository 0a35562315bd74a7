"""The one way a step runs: resolve → intent → apply (retries, timeout) → verify → result.

Resolving a step's parameters against an event's scope is responder/engine/resolution.py's; the call (`StepCall`)
and the reads of its target (`observe`, `ReadBack`, `verified`) are responder/engine/readback.py's.

Runbook steps (the executor), reversals (undo) and operator commands (`responder models …`) all run
their actuator through `run_step`, so each gets the same retries, timeout, `duration_ms`, the same
failure bodies, and the before-state read once and bound to the intent.
"""

from __future__ import annotations

import asyncio
import logging
import time
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator, Mapping
from typing import Any, TypeVar, cast

import structlog
from pydantic import JsonValue

from responder.actuators.base import ActuationResult, Actuator
from responder.actuators.retry import retry_after, settle_verify, settled_by_verify
from responder.engine.readback import ReadBack, StepCall, observe
from responder.errors import ActuationError, TransientActuationError
from responder.errors_actuation import PartialActuationError
from responder.log import enabled as log_enabled
from responder.models.step import StepHead, StepIntent, StepResult, StepStatus
from responder.models.timeline import EntryKind
from responder.timeline.recorder import Recorder
from responder.tracing import active, ended, span

log = structlog.get_logger(__name__)

_INTENT_ONLY = frozenset(StepIntent.model_fields) - frozenset(StepHead.model_fields)
_RESULT_FIELDS = frozenset(StepResult.model_fields)
_CANNOT_OBSERVE = Actuator.observe
_OK_STATUS = StepStatus.OK  # read once: on Python 3.11 an enum class's attribute costs ≈ 0.5 µs
_OK = _OK_STATUS.value
_T = TypeVar("_T")


def run_step(recorder: Recorder, call: StepCall, intent: StepIntent, *, incident: str | None = None,
             kinds: tuple[str, str] = (EntryKind.STEP_INTENT, EntryKind.STEP_RESULT),
             on_intent: Callable[[StepIntent, str | None], None] | None = None,
             marks: Mapping[str, Any] | None = None) -> Coroutine[Any, Any, StepResult]:
    """Record the intent (durable before the call), apply with retries and timeout, verify, record the result.

    The before-state is read once here and written into the intent; a retried apply that finds its
    own earlier (unacknowledged) change in place still reports that before-state as the prior one.
    `marks` are added to the result body (e.g. `reapplied=True`). Returns the coroutine to await (no
    coroutine of its own in between when tracing is off).
    """
    if not active():
        return _run_step(recorder, call, intent, incident, kinds, on_intent, marks)
    return _traced(recorder, call, intent, incident, kinds, on_intent, marks)


async def _traced(recorder: Recorder, call: StepCall, intent: StepIntent, incident: str | None,
                  kinds: tuple[str, str], on_intent: Callable[[StepIntent, str | None], None] | None,
                  marks: Mapping[str, Any] | None) -> StepResult:
    # the step's span is current while it runs, so the actuator's AWS calls (and each retry) are its children
    with span(f"step {intent.step}", attributes={"responder.actuator": intent.actuator, "responder.incident": incident,
                                                 "responder.target": intent.target, "responder.key": intent.key}) as s:
        result = await _run_step(recorder, call, intent, incident, kinds, on_intent, marks)
        ended(s, result.status.value, result.error)
    return result


async def _run_step(recorder: Recorder, call: StepCall, intent: StepIntent, incident: str | None,
                    kinds: tuple[str, str], on_intent: Callable[[StepIntent, str | None], None] | None,
                    marks: Mapping[str, Any] | None) -> StepResult:
    marks = marks or {}
    before = intent.before  # set: an open intent's, read before a crash cut its first run short (steps._execute)
    carried = before is not None
    observed = before is None and type(call.actuator).observe is not _CANNOT_OBSERVE \
        and call.actuator.observes_prior  # the base one cannot say; some observe() for undo only
    started, since = time.perf_counter(), time.monotonic()  # a read of the prior state counts in the step's time
    if observed:
        before = await _observed(call, since)
        if before is not None:
            intent = intent.model_copy(update={"before": before})
    written = intent.body()
    recorder.append(kinds[0], written, incident)
    if on_intent is not None:
        on_intent(intent, incident)
    await recorder.flush()
    if not observed:  # otherwise from the intent's durability, as always: its wait is the timeline's, not the step's
        started, since = time.perf_counter(), time.monotonic()
    head = {k: v for k, v in written.items() if k not in _INTENT_ONLY}
    try:
        acting = _applied(call, since)
        try:  # a timeout can only interrupt a suspension: an actuator done without one needs no timer
            waiting = acting.send(None)
        except StopIteration as stop:
            done = stop.value
        else:  # suspended: from here under the step's deadline, counted from its start as `asyncio.timeout` would
            async with asyncio.timeout_at(_deadline(since, call.timeout)):
                done = await _resumed(acting, waiting)
        read = ReadBack(call)  # after the timeout, as before: an applied change is not failed by it, nor by a bug
        got = await read()
        ok = bool(got)
        if got is False and call.settle is not None:  # only a false read-back pays: read again while it settles
            began = call.settle.clock()
            ok, reads = await settle_verify(read, call.settle)
            if reads > 1:
                marks = {**marks, "verify_reads": reads,
                         "settle_ms": round((call.settle.clock() - began) * 1000, 3)}
        if (why := read.error or read.transient) is not None:  # the last read's (a transient one's: none came after)
            marks = {**marks, "verify_error": why}
    except Exception as exc:  # any actuator error, even a bug, becomes a recorded failed result
        cause = exc.__cause__ if isinstance(exc, PartialActuationError) and exc.__cause__ is not None else exc
        if not isinstance(cause, ActuationError | TimeoutError):  # a bug, also one a partial change wraps
            log.exception("actuator_raised", step=intent.step)
        fallback = "Timeout" if isinstance(exc, TimeoutError) else exc.__class__.__name__
        failed: dict[str, Any] = {"error": str(exc) or "timed out",
                                  "permanent": not isinstance(exc, TransientActuationError | TimeoutError)}
        if isinstance(exc, PartialActuationError):
            failed.update(await _partly(exc, call, before, carried=carried))
        result = StepResult(**head, status=StepStatus.FAILED, code=getattr(exc, "code", fallback),
                            duration_ms=_since(started), **marks, **failed)
        recorder.append(kinds[1], result.body(), incident)
        log.warning("step_failed", step=intent.step, error=str(exc), changed=result.changed)
        return result
    prior = done.prior if before is None else before
    changed = done.changed or (before is not None and before != done.after)
    values = {**head, "status": _OK_STATUS, "changed": changed, "verified": ok, "prior": prior,
              "after": done.after, "outputs": done.outputs, "duration_ms": _since(started), **marks}
    if done.outputs_rebuilt is not None:  # settled by verify(): its reply, with the outputs, was lost
        values["outputs_rebuilt"] = done.outputs_rebuilt
        if done.outputs_lost:
            values["outputs_lost"] = done.outputs_lost
    # every value is checked already (the intent's head, the actuator's validated ActuationResult): no second
    # validation unless a writer's extra fields ride along, which only the validating constructor keeps as extras
    if values.keys() <= _RESULT_FIELDS:
        result = StepResult.trusted(**values)
        body = {**values, "status": _OK}  # what `result.body()` gives: the fields set, JSON values already
    else:
        result = StepResult(**values)
        body = result.body()
    recorder.append(kinds[1], body, incident)
    if log_enabled(logging.INFO):  # a filtered call still costs a logger bind per step
        log.info("step_succeeded", step=intent.step, changed=changed, verified=ok)
    return result


async def _partly(exc: PartialActuationError, call: StepCall, before: dict[str, JsonValue] | None, *,
                  carried: bool) -> dict[str, Any]:
    """The result fields of a failure after a partial change: `changed: true` with the state before and after, so undo
    can revert it; `permanent: null` when it only may have changed something. Neither is refunded from its quota
    (`StepResult.refundable`). The prior state is the intent's `before` when there is one (as an ok result's): read
    before the first attempt, it holds what an earlier attempt changed too, which the failing one's own prior does
    not. A possible change (not `certain`) is read back: when the target no longer holds `before`, it is recorded
    as a change from `before` to what it holds now, so undo can revert it too."""
    if not exc.certain:
        try:  # bounded, and a read that fails however it fails leaves the failure "may have changed something"
            async with asyncio.timeout(call.timeout):
                now = await observe(call) if before is not None else None
        except Exception as failed:  # noqa: BLE001 - a bug in the read must not lose the failed result
            log.warning("partial_readback_failed", actuator=call.actuator.name, error=repr(failed))
            now = None
        if now is not None and now != before:
            return {"permanent": None, "changed": True, "prior": before, "after": now}
        return {"permanent": None}
    out: dict[str, Any] = {"changed": True, "prior": exc.prior if before is None else before, "after": exc.after}
    if carried:  # the intent's before-state is an earlier run's, which a crash cut short
        out["error"] = f"{exc}; {EARLIER} (a run before a restart) may have changed more of the target"
    return out


EARLIER = "an earlier attempt"
"""How a failure's error names an attempt cut short before it (its changes are in the recorded prior state)."""


async def _applied(call: StepCall, since: float) -> ActuationResult:
    """Apply: the first attempt inline, then `_retried` after a transient failure (what the step's timeout bounds).
    An actuator that changes several things in turn (`changes_in_turn`) whose retries end in a failure that is not
    transient may have changed part of its target in the attempt the transient error cut short: that failure is
    raised as a PartialActuationError that is not certain, so it is not refunded."""
    try:
        return await call.actuator.apply(call.params, call.ctx)
    except TransientActuationError as exc:
        if call.attempts <= 1:
            raise
        first = exc
    if not type(call.actuator).changes_in_turn:
        return await _retried(first, call, since)
    try:
        return await _retried(first, call, since)
    except TransientActuationError:
        raise
    except PartialActuationError as exc:
        if not exc.certain:
            raise
        why = first.code or type(first).__name__
        raise PartialActuationError(exc.__cause__ or exc, prior=exc.prior, after=exc.after, done=(
            f"{exc.done}; {EARLIER}, ended by a transient error ({why}), may have changed more of the target"
        )) from exc
    except Exception as exc:  # a permanent error or a bug: recorded as possibly partial
        raise PartialActuationError(exc, certain=False, done=f"an earlier attempt, ended by a transient error "
                                    f"({first.code or type(first).__name__}), may have changed part of the target: "
                                    "check it by hand") from exc


async def _observed(call: StepCall, since: float) -> dict[str, JsonValue] | None:
    """The prior state, read under the step's deadline (a SageMaker read may wait while the endpoint settles): None
    when the deadline passes first, and the step then fails Timeout at its first wait, as it would have in `apply`.
    A read done without a suspension, like such an `apply`, schedules no timer."""
    reading = observe(call)
    try:
        waiting = reading.send(None)
    except StopIteration as stop:
        return cast("dict[str, JsonValue] | None", stop.value)
    try:
        async with asyncio.timeout_at(_deadline(since, call.timeout)):
            return await _resumed(reading, waiting)
    except TimeoutError:
        log.warning("observe_timed_out", actuator=call.actuator.name, timeout=call.timeout)
        return None


def _deadline(since: float, timeout: float) -> float:
    """The loop time `timeout` seconds after `since` (a `time.monotonic()` reading)."""
    return asyncio.get_running_loop().time() - (time.monotonic() - since) + timeout


@types.coroutine
def _resumed(coro: Coroutine[Any, Any, _T], waiting: Any) -> Generator[Any, Any, _T]:
    """What `await coro` does, for a coroutine already run up to its first suspension (which yielded `waiting`):
    each value its task sends, or exception it throws (a cancellation), is passed on to it."""
    while True:
        try:
            sent = yield waiting
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # noqa: BLE001 - thrown in by the task: the coroutine's to handle
            try:
                waiting = coro.throw(exc)
            except StopIteration as stop:
                return cast("_T", stop.value)
        else:
            try:
                waiting = coro.send(sent)
            except StopIteration as stop:
                return cast("_T", stop.value)


def _retried(first: TransientActuationError, call: StepCall, since: float) -> Awaitable[ActuationResult]:
    """The attempts after a transient first one, up to the call's limits (a retry after a lost reply asks
    `verify()` first). Its own function: the closure over the call lives only here, so `_run_step` keeps no
    cells (three GC-tracked containers per running step, alive while it waits on the group commit)."""
    actuator, params, ctx = call.actuator, call.params, call.ctx
    return retry_after(first, lambda: actuator.apply(params, ctx), attempts=call.attempts, deadline=call.timeout,
                       started=since, settled=settled_by_verify(actuator, params, ctx))


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
