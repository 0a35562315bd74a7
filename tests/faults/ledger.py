"""A fake cloud for the engine's property test: one value per target, and a log of every effect by idempotency key.

Every apply that reaches the "cloud" is logged, even when it changes nothing, so a second apply for one key shows.
One armed fault hits the next apply (of a target starting with `only`, when set): a transient error before it or
after it (the reply is lost), or a crash (`Crash`, a BaseException the engine does not catch) before or after it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import Field

from responder.actuators.base import ActuationContext, ActuationResult, Actuator, Params, PlanPreview
from responder.errors import TransientActuationError


class Crash(BaseException):
    """The process died here."""


class Ledger:
    """Target → value, and every effect by idempotency key."""

    def __init__(self) -> None:
        self.state: dict[str, str] = {}
        self.effects: Counter[str] = Counter()
        self.armed: str | None = None
        self.only = ""

    def strike(self, when: str, target: str) -> None:
        """Fire the armed fault if it belongs at this point (`before` or `after` the change) and target."""
        fault = self.armed
        if fault is None or not fault.endswith(when) or not target.startswith(self.only):
            return
        self.armed = None
        if fault.startswith("crash"):
            raise Crash(fault)
        raise TransientActuationError(f"injected {fault}", code="Injected")


class SetParams(Params):
    """Which target, and the value it should hold."""

    target: str = Field(pattern=r"^[A-Z0-9]{4,40}$")
    value: str = Field(default="closed", pattern=r"^[a-z]{1,16}$")


class LedgerSet(Actuator[SetParams]):
    """Set a target's value in the fake cloud; logs one effect per call.

    Example::

        - id: close
          actuator: ledger.set
          with: {target: AKIAEXAMPLE, value: closed}
    """

    name = "ledger.set"
    params = SetParams
    permissions = ("ledger:Set",)
    reverse = "ledger.restore"

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def target(self, p: SetParams) -> str:
        return p.target

    async def plan(self, p: SetParams, ctx: ActuationContext) -> PlanPreview:
        return PlanPreview(target=p.target, summary=f"set {p.target} to {p.value}")

    async def apply(self, p: SetParams, ctx: ActuationContext) -> ActuationResult:
        self.ledger.strike("before", p.target)
        prior = self.ledger.state.get(p.target, "open")
        self.ledger.state[p.target] = p.value
        self.ledger.effects[ctx.key] += 1
        self.ledger.strike("after", p.target)
        return ActuationResult(changed=prior != p.value, target=p.target, prior={"value": prior},
                               after={"value": p.value})

    async def verify(self, p: SetParams, ctx: ActuationContext) -> bool:
        return self.ledger.state.get(p.target, "open") == p.value

    def reverse_params(self, p: SetParams, result: ActuationResult) -> dict[str, Any] | None:
        prior = result.prior.get("value")
        return {"target": p.target, "value": prior} if isinstance(prior, str) else None


class LedgerRestore(LedgerSet):
    """Put a target's recorded value back (the reverse of ledger.set).

    Example::

        - id: restore
          actuator: ledger.restore
          with: {target: AKIAEXAMPLE, value: open}
    """

    name = "ledger.restore"
    reverse = None
    irreversible = "it is the reverse of ledger.set"
