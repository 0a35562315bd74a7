"""Playbook expectations: what is graded, and the sandbox end states that can be checked."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from responder.models.runbook import Duration

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$"


class ExpectKind(StrEnum):
    """What an expectation checks."""

    RUNBOOK_MATCHED = "runbook_matched"
    STEP_DONE = "step_done"
    STEP_NOT_DONE = "step_not_done"
    APPROVAL_REQUESTED = "approval_requested"
    GUARD_TRIPPED = "guard_tripped"
    DEAD_LETTERED = "dead_lettered"
    STATE = "state"
    TIMELINE_VERIFIES = "timeline_verifies"
    NO_DOUBLE_ACTION = "no_double_action"


COMMON = frozenset({"id", "kind", "weight", "must_pass", "after"})  # `after` also anchors injects on any kind
_MATCH = frozenset({"runbook", "step", "actuator", "params"})  # how a step result (or trip, or request) is named
READS: dict[ExpectKind, frozenset[str]] = {  # the fields each kind's grade reads besides COMMON (grading.py)
    ExpectKind.RUNBOOK_MATCHED: frozenset({"runbook", "within", "count"}),
    ExpectKind.STEP_DONE: _MATCH | {"status", "within", "count"},
    ExpectKind.STEP_NOT_DONE: _MATCH,  # successful steps, at any time: no status, window or count
    ExpectKind.APPROVAL_REQUESTED: _MATCH | {"within", "count"},
    ExpectKind.GUARD_TRIPPED: _MATCH | {"reason", "within", "count"},
    ExpectKind.DEAD_LETTERED: frozenset({"reason", "count"}),  # the run's dead letters: no window
    ExpectKind.STATE: frozenset({"check", "resource", "role", "version"}),
    ExpectKind.TIMELINE_VERIFIES: frozenset(),
    ExpectKind.NO_DOUBLE_ACTION: frozenset(),
}


class StateCheck(StrEnum):
    """End states read from the sandbox."""

    KEY_INACTIVE = "key_inactive"
    KEY_ACTIVE = "key_active"
    INSTANCE_QUARANTINED = "instance_quarantined"
    INSTANCE_NOT_QUARANTINED = "instance_not_quarantined"
    INVOKE_DENIED = "invoke_denied"
    ENDPOINT_SERVING = "endpoint_serving"
    SECRET_ROTATED = "secret_rotated"  # noqa: S105  # nosec B105 # a check name, not a password
    BUCKET_BLOCKED = "bucket_blocked"
    API_KEY_DISABLED = "api_key_disabled"
    FUNCTION_THROTTLED = "function_throttled"
    SESSIONS_REVOKED = "sessions_revoked"
    VERSION_QUARANTINED = "version_quarantined"
    TRAIL_LOGGING = "trail_logging"
    BEDROCK_DENIED = "bedrock_denied"


class Expectation(BaseModel):
    """One graded check."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=NAME)
    kind: ExpectKind
    weight: float = Field(default=1.0, gt=0)
    must_pass: bool = False
    after: str | None = Field(default=None, description="inject id the window starts at (default: the first)")
    within: Duration | None = Field(default=None, description="virtual seconds after that inject")
    runbook: str | None = None
    step: str | None = None
    actuator: str | None = None
    params: dict[str, JsonValue] = Field(default_factory=dict, description="subset of the step's params")
    status: str | None = Field(default=None, description="step result status (default ok)")
    count: int | None = Field(default=None, ge=0, description="exact number of matches (default at least one)")
    reason: str | None = Field(default=None, description="dead-letter reason or guard name")
    check: StateCheck | None = None
    resource: str | None = Field(default=None, description="world name (kind inferred from the check)")
    role: str | None = None
    version: str | None = None

    @model_validator(mode="after")
    def _fields_for_kind(self) -> Expectation:
        if self.kind == ExpectKind.RUNBOOK_MATCHED and self.runbook is None:
            raise ValueError("a runbook_matched expectation needs `runbook`")
        if self.kind == ExpectKind.STATE and (self.check is None or self.resource is None):
            raise ValueError("a state expectation needs `check` and `resource`")
        if self.kind in (ExpectKind.STEP_DONE, ExpectKind.STEP_NOT_DONE) and not (self.actuator or self.step):
            raise ValueError(f"a {self.kind.value} expectation needs `actuator` or `step`")
        return self
