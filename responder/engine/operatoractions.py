"""What an operator request runs, once `Operator` (responder/engine/operator.py) has checked and recorded it: `undo`
through the `Undoer`, `models.rollback|switch|quarantine` through `run_step`, as the offline commands do
(`check_given` checks the args an operator gave, here and for `responder models …`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from responder.actuators.base import ActuationContext
from responder.actuators.registry import Registry
from responder.engine.answered import OPERATOR_KEY
from responder.engine.readback import StepCall
from responder.engine.runner import run_step
from responder.engine.undo import Undoer
from responder.errors import ConfigError
from responder.models.operator import MODEL_ACTUATORS, OperatorRequest
from responder.models.runbook import Step
from responder.models.step import StepIntent
from responder.models.timeline import TimelineEntry
from responder.timeline.recorder import Recorder


async def run_action(request: OperatorRequest, recorder: Recorder, registry: Registry, context: ActuationContext,
                     started: dict[str, dict[str, Any]], *,
                     folded: Callable[[TimelineEntry], None] | None = None) -> list[dict[str, Any]]:
    """Run a checked request's action on `recorder`'s timeline: `undo` through the `Undoer`, `models.*` through
    `run_step`; `started`: the params of requests a crash cut short (`Operator.started`), taken by their rerun;
    `folded`: given each `undo.result` as it is recorded (`Undoer.on_undone`)."""
    step = request.args.get("step")
    if request.action == "undo" and not request.incident:
        raise ConfigError("undo needs an incident")
    if request.action == "undo" and request.incident:
        undoer = Undoer(recorder, registry, context.aws, context=context,
                        allow_destructive=request.args.get("allow_destructive") is True,
                        force=request.args.get("force") is True, operator=request.by, on_undone=folded)
        return await undoer.undo(request.incident, str(step) if step is not None else None, held=True)
    name = MODEL_ACTUATORS[request.action]
    actuator = registry.get(name)
    given = {k: v for k, v in request.args.items() if v is not None}
    check_given(actuator.params, given)  # before they reach the world (a registry opened from them)
    raw = started.pop(request.id, None)  # cut short by a crash: as completed then, not from the world now
    if raw is None:  # e.g. models.rollback without --from: from the version served now (ConfigError if unknown)
        raw = await actuator.operator_params(given, context)
    try:
        params = actuator.params.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"invalid parameters: {exc.errors()[0]['msg']}") from exc
    defaults = Step(id="operator", actuator=name)
    key = f"{OPERATOR_KEY}{request.id}"
    call = StepCall(actuator, params, context.for_step(request.incident or "", key),
                    attempts=defaults.retries + 1, timeout=defaults.timeout)
    intent = StepIntent(step="operator", actuator=name, target=actuator.target(params),
                        key=key, source="kafka", operator=request.by,
                        params=params.model_dump(mode="json"), destructive=actuator.destructive)
    result = await run_step(recorder, call, intent, incident=request.incident)
    return [result.body()]


def check_given(schema: type[BaseModel], given: dict[str, Any]) -> None:
    """ConfigError when an arg the operator gave is not valid under the actuator's params schema (an unknown name, a
    wrong type or pattern); what is missing (to be completed by `operator_params`) is checked once completed. Before
    a registry is opened from them or a timeline's lock is taken (`responder models …` offline, too)."""
    try:
        schema.model_validate(given)
    except ValidationError as exc:
        bad = [e for e in exc.errors() if e["loc"] and e["type"] != "missing"]
        if bad:
            raise ConfigError(f"invalid parameters: {bad[0]['loc'][0]}: {bad[0]['msg']}") from exc
