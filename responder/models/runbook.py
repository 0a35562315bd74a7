"""The runbook schema: what a YAML file in runbooks/ may say (unknown keys are rejected)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

KEBAB = r"^[a-z0-9]+(-[a-z0-9]+)*$"


class Mode(StrEnum):
    """Whether a runbook acts or only records its plan."""

    ENFORCE = "enforce"
    DRY_RUN = "dry_run"


class OnFailure(StrEnum):
    """What the rest of the plan does when a step fails."""

    STOP = "stop"
    CONTINUE = "continue"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Condition(_Strict):
    """One test of an event field: `{field: severity.score, op: ge, value: 7}`."""

    field: str = Field(min_length=1)
    op: str
    value: JsonValue = None


class AllOf(_Strict):
    """Every nested condition holds."""

    all: list[ConditionNode]


class AnyOf(_Strict):
    """At least one nested condition holds."""

    any: list[ConditionNode]


class NotOf(_Strict):
    """The nested condition does not hold."""

    not_: ConditionNode = Field(alias="not")

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


ConditionNode = Annotated[Condition | AllOf | AnyOf | NotOf, Field(union_mode="left_to_right")]


class Trigger(_Strict):
    """Which events a runbook handles."""

    source: str = "*"
    type: str = "*"
    conditions: list[ConditionNode] = Field(default_factory=list)


class Step(_Strict):
    """One call of an actuator with parameters bound from the event."""

    id: str = Field(pattern=KEBAB)
    actuator: str
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    when: list[ConditionNode] = Field(default_factory=list)
    on_failure: OnFailure = OnFailure.STOP
    timeout: float = Field(default=30.0, gt=0, le=900)
    retries: int = Field(default=3, ge=0, le=10)

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Runbook(_Strict):
    """A trigger, a grouping key and ordered steps."""

    id: str = Field(pattern=KEBAB)
    version: int | str = 1
    description: str = ""
    owner: str = ""
    mode: Mode = Mode.ENFORCE
    trigger: Trigger
    group_by: str = "${event.incident_key}"
    window: float = Field(default=3600.0, gt=0, description="seconds an incident stays open to new events")
    steps: list[Step] = Field(min_length=1)

    @property
    def ref(self) -> str:
        """`id@version`, the identity used in idempotency keys."""
        return f"{self.id}@{self.version}"


AllOf.model_rebuild()
AnyOf.model_rebuild()
NotOf.model_rebuild()
Trigger.model_rebuild()
Step.model_rebuild()
