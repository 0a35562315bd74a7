"""The engine's state as a serialisable value (`EngineSnapshot`), and the records it keeps per step key.

`EngineState` (responder/engine/state.py) holds these and changes only through its methods; a fleet cuts the
snapshot into per-incident slices (responder/engine/partitions.py) and writes them to the changelog.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, JsonValue

from responder.engine.approvals import Parked
from responder.engine.incidents import Incident
from responder.engine.quotas import QuotaCharge, QuotaRun
from responder.engine.undone import Undone
from responder.models.event import builder
from responder.models.step import StepIntent, StepResult


class DoneStep(BaseModel):
    """A step key's result and the incident it belongs to."""

    model_config = ConfigDict(frozen=True)

    incident: str | None
    result: StepResult
    params: dict[str, JsonValue] | None = None
    """The params of the intent the result resolved (what `verify` re-checks on a new event)."""
    undone: Undone | None = None
    """Set once an operator's undo reversed the step (responder/engine/undone.py): a later event of its incident does
    not apply it again. A new result of the key clears it (a record without it, as written before 2026-12-08)."""


class InFlight(BaseModel):
    """A step key's intent, written without a result yet, and the incident it belongs to."""

    model_config = ConfigDict(frozen=True)

    incident: str | None
    intent: StepIntent


done_record = builder(DoneStep)  # values of the checked types already: no validation walk over the params per step,
inflight_record = builder(InFlight)  # and one fields-set shared by every record (the state keeps one per step key)


class EngineSnapshot(BaseModel):
    """Everything the engine remembers, as one serialisable value."""

    incidents: list[Incident] = []
    done: dict[str, DoneStep] = {}
    inflight: dict[str, InFlight] = {}
    parked: list[Parked] = []
    quotas: list[QuotaRun] = []
    closed: list[tuple[str, str, float, float]] = []
    """(runbook, group key, quiet until, evicted at) of evicted incidents: an event no later must not
    reopen them."""
    charges: list[QuotaCharge] = []
    """Counted runs still waiting for their result (refunded if it is a permanent failure that changed nothing)."""
    granted: list[Parked] = []
    """Steps released to run (approved, or `on_timeout: approve`) that have no result yet: a crash inside one
    leaves its intent open, and `Decisions.resolve_granted` resolves it once the service is back."""
    continuing: list[tuple[Parked, bool, bool]] = []
    """Released or denied steps past (with whether they passed, and whether their failure was escalated), whose run
    has not recorded its end: a crash after one leaves the steps after it, which `Decisions.resolve_granted` takes up
    once the service is back."""
