"""The outputs of a step whose reply was lost, rebuilt from a read of its target (`Actuator.outputs_now`).

A retry that finds its lost attempt's change in place (`settled_by_verify`) and an open intent a crash left, resolved
by `verify()` (responder/engine/steps.py), have no reply to take the outputs from. What a read proves is kept; every
other declared output is recorded lost (`outputs_lost`), so a later step reading one fails and escalates instead of
reading it as not set (docs/engine.md#outputs-of-a-step-whose-reply-was-lost).
"""

from __future__ import annotations

from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, JsonValue

from responder.actuators.base import ActuationContext, Actuator
from responder.errors import ActuationError

log = structlog.get_logger(__name__)


class Rebuilt(BaseModel):
    """The outputs read back for a step whose reply was lost, and the declared ones no read could give."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    outputs: dict[str, JsonValue]
    rebuilt: bool | None = None
    """Whether `outputs_now` answered (None: the actuator declares no outputs, so there was nothing to rebuild)."""
    lost: list[str] = []

    def fields(self) -> dict[str, Any]:
        """The result fields it sets (`outputs`, and `outputs_rebuilt` and `outputs_lost` when there were any)."""
        if self.rebuilt is None:
            return {"outputs": self.outputs}
        return {"outputs": self.outputs, "outputs_rebuilt": self.rebuilt,
                **({"outputs_lost": list(self.lost)} if self.lost else {})}


async def rebuild(actuator: Actuator[Any], params: BaseModel, ctx: ActuationContext) -> Rebuilt:
    """The outputs of a step whose change holds but whose reply was lost: what `outputs_now` reads (its declared keys
    only), the rest of `example_outputs` lost. A read that fails, however it fails, rebuilds nothing: every declared
    output is lost (the step's result is never lost to it)."""
    declared = actuator.example_outputs
    if not declared:
        return Rebuilt(outputs={})
    try:
        got = await actuator.outputs_now(params, ctx)
    except (ActuationError, TimeoutError) as exc:
        log.warning("outputs_rebuild_failed", actuator=actuator.name, error=str(exc))
        got = None
    except Exception:  # a bug in the read must not lose the step's result: its outputs are lost
        log.exception("outputs_rebuild_raised", actuator=actuator.name)
        got = None
    outputs = {k: v for k, v in (got or {}).items() if k in declared}
    lost = [k for k in declared if k not in outputs]
    if lost:
        log.warning("outputs_lost", actuator=actuator.name, lost=lost)
    return Rebuilt(outputs=outputs, rebuilt=got is not None, lost=lost)
