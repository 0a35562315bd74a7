"""Plans: fully resolved steps with concrete parameters, before anything runs."""

from __future__ import annotations

import hashlib

import orjson
from pydantic import BaseModel, ConfigDict, JsonValue


class PlannedStep(BaseModel):
    """A step bound to one target with validated parameters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    step_id: str
    actuator: str
    params: dict[str, JsonValue]
    target: str
    key: str
    destructive: bool = False
    on_failure: str = "stop"
    timeout: float = 30.0
    retries: int = 3


class Plan(BaseModel):
    """What a runbook will do for one incident."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    incident: str
    runbook: str
    event_id: str
    dry_run: bool
    steps: tuple[PlannedStep, ...]

    @property
    def digest(self) -> str:
        """SHA-256 over the canonical plan; approvals bind to it."""
        body = orjson.dumps(self.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(body).hexdigest()


def idempotency_key(incident: str, runbook_ref: str, step_id: str, target: str) -> str:
    """hash(incident, runbook@version, step, target): one effect per key."""
    parts = (incident, runbook_ref, step_id, target)
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
