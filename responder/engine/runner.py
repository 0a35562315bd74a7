"""The one way a step runs: resolve → intent → apply (retries, timeout) → verify → result.

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
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple, TypeVar, cast

import structlog
from pydantic import BaseModel, JsonValue, ValidationError

from responder.actuators.base import ActuationContext, ActuationResult, Actuator
from responder.actuators.registry import Registry
from responder.actuators.retry import VerifySettle, retry_after, settle_verify, settled_by_verify
from responder.engine.templating import render
from responder.errors import ActuationError, TemplateError, TransientActuationError
from responder.log import enabled as log_enabled
from responder.models.runbook import Step
from responder.models.step import StepHead, StepIntent, StepResult, StepStatus
from responder.models.timeline import EntryKind
from responder.rules.conditions import describe, first_failure
from responder.timeline.recorder import Recorder
from responder.tracing import active, ended, span

log = structlog.get_logger(__name__)

_INTENT_ONLY = frozenset(StepIntent.model_fields) - frozenset(StepHead.model_fields)
_RESULT_FIELDS = frozenset(StepResult.model_fields)
_CANNOT_OBSERVE = Actuator.observe
_OK = StepStatus.OK.value
_T = TypeVar("_T")


class Resolved(NamedTuple):
    """A step whose parameters resolved and validated now (a named tuple: built once per step, 2x cheaper)."""

    actuator: Actuator[Any]
    params: BaseModel
    target: str
    values: dict[str, Any]


@dataclass(frozen=True)
class NotNow:
    """A step whose `when` does not hold."""

    condition: str


@dataclass(frozen=True)
class Invalid:
    """A step whose parameters do not resolve or validate; `intended`: what it was meant to act on (`intended`)."""

    error: str
    intended: str = ""


def intended(with_: Mapping[str, Any], scope: Mapping[str, Any]) -> str:
    """What a step whose parameters did not resolve or validate was meant to act on, for `${failure.target}`: each
    parameter's value where it resolves to a scalar, as the runbook wrote it where it does not (its text, never
    evaluated; a value from the event is data here too: rendered once, never scanned again)."""
    parts = []
    for name, value in with_.items():
        try:
            got = render(value, scope)
        except TemplateError:
            got = value
        shown = got if isinstance(got, str | int | float | bool) else value
        parts.append(f"{name}={str(shown)[:200]}")
    return "unresolved: " + ", ".join(parts)


def resolve_step(step: Step, scope: Mapping[str, Any], registry: Registry) -> Resolved | NotNow | Invalid:
    """Bind a runbook step to one event's scope: its actuator, validated params and target."""
    failed_when = first_failure(step.when, scope)
    if failed_when is not None:
        return NotNow(describe(failed_when))
    actuator = registry.get(step.actuator)
    try:
        params = actuator.params.model_validate(render(step.with_, scope))
    except (TemplateError, ValidationError) as exc:
        return Invalid(f"invalid parameters: {exc}", intended(step.with_, scope))
    return Resolved(actuator, params, actuator.target(params), params.model_dump(mode="json"))


class StepCall(NamedTuple):
    """One actuator call and its limits (a named tuple: built once per step, 2x cheaper than a frozen dataclass);
    `settle`: how long a false read-back is read again (`VerifySettle`) before it is recorded; none: read once."""

    actuator: Actuator[Any]
    params: BaseModel
    ctx: ActuationContext
    attempts: int = 1
    timeout: float = 30.0
    settle: VerifySettle | None = None


async def verified(call: StepCall) -> bool:
    """Whether the desired state holds now; an error reading it back counts as not verified."""
    try:
        return bool(await call.actuator.verify(call.params, call.ctx))
    except (ActuationError, TimeoutError):
        return False


async def observe(call: StepCall) -> dict[str, JsonValue] | None:
    """The target's state now, as the actuator reports it (None when it cannot say or reading fails)."""
    try:
        return await call.actuator.observe(call.params, call.ctx)
    except (ActuationError, TimeoutError) as exc:
        log.warning("observe_failed", actuator=call.actuator.name, error=str(exc))
        return None


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
    if before is None and type(call.actuator).observe is not _CANNOT_OBSERVE:  # the base `observe` cannot say
        before = await observe(call)
        if before is not None:
            intent = intent.model_copy(update={"before": before})
    written = intent.body()
    recorder.append(kinds[0], written, incident)
    if on_intent is not None:
        on_intent(intent, incident)
    await recorder.flush()
    head = {k: v for k, v in written.items() if k not in _INTENT_ONLY}
    started, since = time.perf_counter(), time.monotonic()
    try:
        acting = _applied(call, since)
        try:  # a timeout can only interrupt a suspension: an actuator done without one needs no timer
            waiting = acting.send(None)
        except StopIteration as stop:
            done = stop.value
        else:  # suspended: from here under the step's deadline, counted from its start as `asyncio.timeout` would
            async with asyncio.timeout_at(_deadline(since, call.timeout)):
                done = await _resumed(acting, waiting)
        ok = await verified(call)  # after the timeout, as before: an applied change is not failed by it
        if not ok and call.settle is not None:  # only a false read-back pays: read again while the change settles
            ok, reads = await settle_verify(partial(verified, call), call.settle)
            if reads > 1:
                marks = {**marks, "verify_reads": reads}
    except Exception as exc:  # any actuator error, even a bug, becomes a recorded failed result
        if not isinstance(exc, ActuationError | TimeoutError):
            log.exception("actuator_raised", step=intent.step)
        fallback = "Timeout" if isinstance(exc, TimeoutError) else exc.__class__.__name__
        result = StepResult(**head, status=StepStatus.FAILED, error=str(exc) or "timed out",
                            code=getattr(exc, "code", fallback),
                            permanent=not isinstance(exc, TransientActuationError | TimeoutError),
                            duration_ms=_since(started), **marks)
        recorder.append(kinds[1], result.body(), incident)
        log.warning("step_failed", step=intent.step, error=str(exc))
        return result
    prior = done.prior if before is None else before
    changed = done.changed or (before is not None and before != done.after)
    values = {**head, "status": StepStatus.OK, "changed": changed, "verified": ok, "prior": prior,
              "after": done.after, "outputs": done.outputs, "duration_ms": _since(started), **marks}
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


async def _applied(call: StepCall, since: float) -> ActuationResult:
    """Apply: the first attempt inline, then `_retried` after a transient failure (what the step's timeout bounds)."""
    try:
        return await call.actuator.apply(call.params, call.ctx)
    except TransientActuationError as exc:
        if call.attempts <= 1:
            raise
        first = exc
    return await _retried(first, call, since)


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
