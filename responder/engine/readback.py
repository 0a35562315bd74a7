"""One actuator call (`StepCall`) and the reads of its target: the state before (`observe`), whether the desired state
holds (`verified`: a drift check, an open intent's resolution, undo) and the read-back after an apply (`ReadBack`).

responder/engine/runner.py runs the call; the engine's checks that read without applying use these reads directly.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import structlog
from pydantic import BaseModel, JsonValue

from responder.actuators.base import ActuationContext, Actuator
from responder.actuators.retry import VerifySettle
from responder.errors import ActuationError, TransientActuationError

log = structlog.get_logger(__name__)

MAX_VERIFY_ERROR = 500  # characters of a read-back's error kept in the result (`verify_error`)


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
    """Whether the desired state holds now; an error reading it back counts as not verified, and so does a bug in
    `verify()` (logged): a step recorded ok despite one (`ReadBack`) is checked again here by the next finding's drift
    check, an open intent's resolution and undo, which then act as on a false read instead of losing the finding."""
    try:
        return bool(await call.actuator.verify(call.params, call.ctx))
    except (ActuationError, TimeoutError):
        return False
    except Exception:  # a bug in verify(): not verified, as `ReadBack` reads it after an apply
        log.exception("verify_raised", actuator=call.actuator.name)
        return False


class ReadBack:
    """A step's `verify()` read after its apply: True or False. A transient error or a timeout reads False (read again
    while the change settles) and is kept in `transient` until the next read answers; a permanent error
    (AccessDenied) or a bug in `verify()` answers None, as no wait can help, and is kept in `error`. The last read's
    error is the result's `verify_error` (the step applied: it is recorded ok, unverified, and escalated)."""

    __slots__ = ("call", "error", "transient")

    def __init__(self, call: StepCall) -> None:
        self.call = call
        self.error: str | None = None
        self.transient: str | None = None

    async def __call__(self) -> bool | None:
        call = self.call
        self.transient = None
        try:
            return bool(await call.actuator.verify(call.params, call.ctx))
        except (TransientActuationError, TimeoutError) as exc:  # read again while it settles; kept if the last read
            self.transient = _named(exc) if isinstance(exc, ActuationError) else "Timeout: the read-back timed out"
            return False
        except ActuationError as exc:  # its message names its code when it came from AWS (`classify`)
            self.error = _named(exc)
        except Exception as exc:  # a bug in verify(): the step did apply, so it is not failed by it
            log.exception("verify_raised", actuator=call.actuator.name)
            self.error = f"{type(exc).__name__}: {exc}"[:MAX_VERIFY_ERROR]
        return None


def _named(exc: ActuationError) -> str:
    """`CODE: message` of a read-back's error, cut to MAX_VERIFY_ERROR characters."""
    text, code = str(exc), exc.code or type(exc).__name__
    return (text if text.startswith(f"{code}:") else f"{code}: {text}")[:MAX_VERIFY_ERROR]


async def observe(call: StepCall) -> dict[str, JsonValue] | None:
    """The target's state now, as the actuator reports it (None when it cannot say or reading fails)."""
    try:
        return await call.actuator.observe(call.params, call.ctx)
    except (ActuationError, TimeoutError) as exc:
        log.warning("observe_failed", actuator=call.actuator.name, error=str(exc))
        return None
