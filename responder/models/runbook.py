"""The runbook schema: what a YAML file in runbooks/ may say (unknown keys are rejected)."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, JsonValue, WithJsonSchema

from responder.models.signed import STEP_ID_MAX
from responder.models.threat import ThreatCategory

KEBAB = r"^[a-z0-9]+(-[a-z0-9]+)*$"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
MAX_DURATION = 365 * 86400.0
"""The longest window, cooldown or timeout: longer ones (or `.inf`) overflow the dates the engine computes."""


def parse_duration(value: Any) -> Any:
    """`90`, `"90s"`, `"15m"`, `"1h"`, `"2d"` → seconds; a boolean is refused (pydantic's lax float reads `true` as 1
    s); other values are left for pydantic to reject."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {str(value).lower()} (use seconds or 500ms, 30s, 15m, 1h, 2d)")
    if isinstance(value, str):
        found = _DURATION.match(value)
        if not found:
            raise ValueError(f"not a duration: {value!r} (use seconds or 500ms, 30s, 15m, 1h, 2d)")
        return float(found.group(1)) * _UNIT[found.group(2)]
    return value


def _bounded(seconds: float) -> float:
    if not seconds <= MAX_DURATION:  # NaN and infinities too
        raise ValueError(f"{seconds:g} s is too long: at most 365d ({MAX_DURATION:.0f} s)")
    return seconds


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    AfterValidator(_bounded),
    WithJsonSchema({"anyOf": [{"type": "number", "minimum": 0, "maximum": MAX_DURATION},
                              {"type": "string", "pattern": r"^\d+(\.\d+)?(ms|s|m|h|d)?$"}],
                    "description": "seconds, or a number with a unit: 500ms, 30s, 15m, 1h, 2d; at most 365d"}),
]


class Mode(StrEnum):
    """Whether a runbook acts or only records its plan."""

    ENFORCE = "enforce"
    DRY_RUN = "dry_run"


class OnFailure(StrEnum):
    """What the rest of the plan does when a step fails (or its approval is denied)."""

    STOP = "stop"
    CONTINUE = "continue"


class OnTimeout(StrEnum):
    """What happens when nobody decides an approval in time."""

    DENY = "deny"
    APPROVE = "approve"
    ESCALATE = "escalate"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Condition(_Strict):
    """One test of a field: `{field: event.severity.score, op: ge, value: 7}`."""

    field: str = Field(min_length=1, description="dotted path: event.…, incident.… or steps.<id>.result.…")
    op: str = Field(description="eq, ne, in, not_in, glob, regex, gt, ge, lt, le, exists, contains, cidr")
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


ConditionNode = Annotated[Condition | AllOf | AnyOf | NotOf, Field(union_mode="left_to_right")]


def _listed(value: Any) -> Any:
    """`category: llmjacking` is shorthand for `category: [llmjacking]`."""
    return [value] if isinstance(value, str) else value


_CATEGORY = {"type": "string", "enum": [c.value for c in ThreatCategory]}
Categories = Annotated[
    list[ThreatCategory],
    BeforeValidator(_listed),
    WithJsonSchema({"anyOf": [_CATEGORY, {"type": "array", "items": _CATEGORY}],
                    "description": "normalised threat category (or a list of them) the event must carry, "
                                   "whatever its source (docs/threats.md)"}),
]


class Trigger(_Strict):
    """Which events a runbook handles: threat category, source and type globs, then conditions (implicitly all)."""

    category: Categories = Field(default_factory=list)
    source: str = Field(default="*", description="event source, exact or glob (guardduty, falco, …)")
    type: str = Field(default="*", description="event type glob, e.g. UnauthorizedAccess:IAMUser/*")
    conditions: list[ConditionNode] = Field(default_factory=list)


class Quota(_Strict):
    """At most `max` executions of actuators matching `actuator` per sliding `window`."""

    actuator: str = Field(default="*", description="actuator name or glob")
    max: int = Field(ge=0)
    window: Duration = Field(gt=0)


class Protected(_Strict):
    """Resources automation must never touch: ids (globs) or tags (on the event's resources, and on each resource a
    step acts on, read through AWS)."""

    ids: list[str] = Field(default_factory=list, description="exact ids, ARNs or globs of them")
    tags: dict[str, str] = Field(default_factory=dict, description="tag key → value ('*' = any value); "
                                                               "read through AWS on each resource a step acts on")


class Guards(_Strict):
    """Limits on what this runbook may do unattended; a tripped guard asks a human."""

    max_targets: int | None = Field(default=None, ge=1, description="distinct targets per plan")
    quotas: list[Quota] = Field(default_factory=list)
    protected: Protected = Field(default_factory=Protected)


class Approval(_Strict):
    """A human decision the step waits for, bound to the plan digest."""

    required: bool | None = Field(default=None, description="default: true for destructive actuators")
    approvers: list[str] = Field(default_factory=list, description="who may decide; empty = any signed key holder")
    timeout: Duration = Field(default=3600.0, gt=0)
    on_timeout: OnTimeout = OnTimeout.DENY


class Step(_Strict):
    """One call of an actuator with parameters bound from the event, incident or earlier steps."""

    id: str = Field(pattern=KEBAB, max_length=STEP_ID_MAX,
                    description="at most 100 characters, so a decision can name it (since 2026-12-07)")
    actuator: str
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    when: list[ConditionNode] = Field(default_factory=list)
    approval: Approval = Field(default_factory=Approval)
    on_failure: OnFailure = OnFailure.STOP
    timeout: Duration = Field(default=30.0, gt=0, le=900)
    retries: int = Field(default=3, ge=0, le=10)


MAX_VERSION = 2**53 - 1
"""The largest runbook version: the largest integer every JSON reader of the timeline keeps exact."""


class Runbook(_Strict):
    """A trigger, a grouping key, guards and ordered steps."""

    id: str = Field(pattern=KEBAB, description="equal to the file name without .yaml")
    version: int = Field(default=1, ge=0, le=MAX_VERSION, strict=True,
                         description="a plain decimal integer, unquoted (the loader refuses 010, 1.10, \"2\"), "
                         "0 to 2**53 - 1: part of every idempotency key")
    description: str = ""
    owner: str = ""
    mode: Mode = Mode.ENFORCE
    require_signature: bool = Field(
        default=False, description="act on signed records only: an unsigned record an event of which this runbook "
        "matches is refused (dead-lettered, `authentication`), whatever RESPONDER_REQUIRE_SIGNATURE says")
    trigger: Trigger
    group_by: str = Field(default="${event.incident_key}", description="template of the incident key")
    window: Duration = Field(default=3600.0, gt=0, description="an incident stays open to events this long")
    cooldown: Duration = Field(default=0.0, ge=0, description="no new incident for a key this soon after the last")
    count_window: Duration | None = Field(
        default=None, gt=0,
        description="`incident.recent_events` counts the incident's distinct events in this sliding span "
        "(default: window); with one event per monitoring window this expresses N of the last M windows",
    )
    guards: Guards = Field(default_factory=Guards)
    steps: list[Step] = Field(min_length=1)
    on_failure: list[Step] = Field(
        default_factory=list,
        description="escalation: steps (typically notify) run whenever a step fails or is refused; they read "
        "${failure.step|actuator|target|status|error|code} besides event, incident and earlier steps",
    )

    @property
    def ref(self) -> str:
        """`id@version`, the identity used in idempotency keys."""
        return f"{self.id}@{self.version}"


AllOf.model_rebuild()
AnyOf.model_rebuild()
NotOf.model_rebuild()
Trigger.model_rebuild()
Step.model_rebuild()
Runbook.model_rebuild()
