"""What one step did: its intent (written before the cloud call) and its result (written after).

These are the bodies of `step.intent` / `step.result` (and `undo.intent` / `undo.result`) timeline
entries. They are written from these models and read back into them; fields a writer adds for its own
readers (`source`, `operator`, `undoes`, `reverse`, …) are kept as extra fields. Only the fields a
writer set are written, so the bytes of older entries and their hashes stay as they were.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, JsonValue

from responder.models.event import built


class StepStatus(StrEnum):
    """How a step ended."""

    OK = "ok"
    FAILED = "failed"
    DENIED = "denied"  # a human (or an approval timeout) said no
    REFUSED = "refused"  # a hard guard (protected resource) said no
    SKIPPED = "skipped"  # an undo that was not attempted

    @property
    def final(self) -> bool:
        """Whether the result is never re-run for the same idempotency key (success or a human's denial)."""
        return self in _FINAL


_FAILED = StepStatus.FAILED
_OK = StepStatus.OK  # read once: on Python 3.11 an enum class's attribute costs ≈ 0.5 µs (`EnumType.__getattr__`)
_FINAL = frozenset((StepStatus.OK, StepStatus.DENIED))
# the types a field's JSON value has, enums aside: `body()` asks `isinstance(value, StrEnum)` only of the others
# (≈ 0.2 µs each: a class whose metaclass is not `type` misses isinstance's fast path; a set lookup is ≈ 0.03 µs)
_PLAIN = frozenset((str, int, float, bool, type(None), dict, list))


class _Body(BaseModel):
    """A timeline body: extra fields kept, only the fields set are written."""

    model_config = ConfigDict(extra="allow", frozen=True)

    @classmethod
    def read(cls, body: Mapping[str, Any]) -> Self:
        """The model of a body read back from the timeline."""
        return cls.model_validate(dict(body))

    @classmethod
    def trusted(cls, **values: Any) -> Self:
        """An instance from values the engine built itself, already of the fields' types, without validating
        them again (about a third of the cost); the fields given count as set, as with the constructor."""
        defaults, mutable = _defaults(cls)
        fields = {**defaults, **values}
        for name in mutable:
            if name not in values:  # a mutable default is never shared
                fields[name] = dict(fields[name])
        obj: Self = built(cls, fields, _given(cls, tuple(values)))
        object.__setattr__(obj, "__pydantic_extra__", {})  # no extras, as pydantic leaves them (empty: untracked)
        return obj

    def body(self) -> dict[str, Any]:
        """The timeline body: only the fields that were set, as JSON values.

        The fields hold JSON values already (strings, numbers, bools, None, JSON dicts, the status enum), so
        the body is read off the instance instead of `model_dump(mode="json", exclude_unset=True)` (a third
        of the cost), an enum asked for only when the value's type is none of the plain JSON ones; an instance
        with extra fields goes through pydantic.
        """
        if self.__pydantic_extra__:
            return self.model_dump(mode="json", exclude_unset=True)
        given = self.__pydantic_fields_set__
        return {name: value if type(value) in _PLAIN else value.value if isinstance(value, StrEnum) else value
                for name, value in self.__dict__.items() if name in given}


_DEFAULTS: dict[type[BaseModel], tuple[dict[str, Any], tuple[str, ...]]] = {}
_GIVEN: dict[tuple[type[BaseModel], tuple[str, ...]], set[str]] = {}
"""One fields-set per model and set of given names, shared by the `trusted` instances (frozen: never added to;
`model_copy` copies it first). A set per instance was a container more per step for the cyclic collector, kept
as long as the engine state keeps the step's result."""
_GIVEN_MAX = 512


def _given(cls: type[BaseModel], names: tuple[str, ...]) -> set[str]:
    """The shared fields-set of these names (a fresh one past `_GIVEN_MAX` combinations)."""
    found = _GIVEN.get((cls, names))
    if found is None:
        found = set(names)
        if len(_GIVEN) < _GIVEN_MAX:
            _GIVEN[(cls, names)] = found
    return found


def _defaults(cls: type[BaseModel]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The class's field defaults, and the names of those that are dicts (copied for each instance)."""
    found = _DEFAULTS.get(cls)
    if found is None:
        fields = cls.model_fields.items()
        defaults = {name: f.get_default(call_default_factory=True) for name, f in fields}
        found = _DEFAULTS[cls] = (defaults, tuple(n for n, v in defaults.items() if isinstance(v, dict)))
    return found


class StepHead(_Body):
    """Which step on which target, and its idempotency key."""

    step: str
    actuator: str
    target: str | None = None
    key: str | None = None
    undoes: str | None = None
    """For a reversal: the key of the step it undoes."""
    reverse: str | None = None
    """For a reversal: the reverse actuator that runs."""


class StepIntent(StepHead):
    """Written (and made durable) before the cloud call."""

    params: dict[str, JsonValue] = {}
    destructive: bool | None = None
    runbook: str | None = None
    clock: float | None = None
    before: dict[str, JsonValue] | None = None
    """The target's state read once before the first attempt; retries and undo use this, not a re-read."""


class StepResult(StepHead):
    """Written once the step has its result."""

    status: StepStatus
    error: str | None = None
    code: str | None = None
    permanent: bool | None = None
    reason: str | None = None
    changed: bool | None = None
    verified: bool | None = None
    recovered: bool | None = None
    reapplied: bool | None = None
    prior: dict[str, JsonValue] | None = None
    after: dict[str, JsonValue] | None = None
    outputs: dict[str, JsonValue] | None = None
    outputs_rebuilt: bool | None = None
    """Set on an ok result whose reply was lost (settled by `verify()` on a retry, or `recovered` after a crash) and
    whose actuator declares outputs: whether they were read back from the target (`Actuator.outputs_now`). Absent on
    a result whose outputs `apply` returned (and on every entry written before 2026-12-08)."""
    outputs_lost: list[str] | None = None
    """With `outputs_rebuilt`: the declared outputs no read could give. A later step whose `when` or parameters read
    one fails, naming the step and the output, and escalates (never read as not set)."""
    duration_ms: float | None = None
    verify_reads: int | None = None
    """How many times `verify()` read the target back, when a false first read was read again (`VerifySettle`)."""
    settle_ms: float | None = None
    """How long the read-back settled (its waits and re-reads after the first false read), with `verify_reads`."""
    verify_error: str | None = None
    """Why the read-back could not be made (a permanent error such as AccessDenied, a bug in `verify()`, or a transient
    error on the last read): the step applied, so it is ok and `verified: false`, and escalated as unverified with
    this."""

    @property
    def ok(self) -> bool:
        """Whether the step succeeded."""
        return self.status is _OK

    @property
    def refundable(self) -> bool:
        """Whether the step's quota run (and fleet-wide slot) is given back: a permanent failure that changed nothing.
        A failure after a partial change (`changed: true`, since 2026-12-07) or one that may have changed something
        (`permanent` not true: transient, timed out, unknown) stays counted."""
        return self.status is _FAILED and self.permanent is True and self.changed is not True


UNVERIFIED = "unverified"
"""`${failure.status}` of a step that applied (recorded ok) but whose desired state did not hold when read back."""
UNVERIFIED_ERROR = ("applied, but its desired state does not hold when read back (verify() was false, or reading it "
                    "failed): check the target by hand")


class Failure(BaseModel):
    """What a runbook's `on_failure` steps read as `${failure.…}`: the step that failed and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    step: str
    actuator: str
    target: str
    status: str
    error: str
    code: str

    @classmethod
    def of(cls, result: StepResult, intended: str | None = None) -> Failure:
        """The failure a failed or refused step result describes (an ok one whose read-back did not verify: status
        `unverified`, code `Unverified`); `intended` names what a step whose parameters did not resolve (so it has no
        target) was meant to act on."""
        if result.status is StepStatus.OK and result.verified is False:
            reads = f" (read back {result.verify_reads} times as it settled)" if result.verify_reads else ""
            why = f"; reading it failed: {result.verify_error}" if result.verify_error else ""
            return cls(step=result.step, actuator=result.actuator, target=result.target or "", status=UNVERIFIED,
                       error=UNVERIFIED_ERROR + reads + why, code="Unverified")
        return cls(step=result.step, actuator=result.actuator, target=result.target or intended or "",
                   status=result.status.value, error=result.error or "", code=result.code or "")
