"""What happened in one scenario: filled in by the runner, read by grading and the scorecard."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from responder.actuators.aws.session import AwsSession
from responder.models.timeline import TimelineEntry
from responder.tabletop.models import Playbook
from responder.tabletop.world import Bindings


@dataclass
class Run:
    """What happened in one scenario (graded afterwards)."""

    playbook: Playbook
    path: Path
    timeline: Path
    defaulted: list[str] = field(default_factory=list)  # runbooks the service gave the default_on_failure steps
    bindings: Bindings = field(default_factory=Bindings)
    start: float = 0.0
    inject_at: dict[str, float] = field(default_factory=dict)
    end: float = 0.0
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    deadlettered: dict[str, int] = field(default_factory=dict)
    faults: list[dict[str, Any]] = field(default_factory=list)
    restarts: int = 0
    kills: list[dict[str, Any]] = field(default_factory=list)  # each SIGKILL: virtual time, pid, exit code, call
    wall: float = 0.0
    error: str | None = None
    entries: list[TimelineEntry] = field(default_factory=list)
    aws: AwsSession | None = None  # the runner's own session, without faults: state checks read through it
    deliveries: list[dict[str, Any]] = field(default_factory=list)  # each record: inject, transport, auth, status
    undelivered: dict[str, str] = field(default_factory=dict)  # inject id → the anchor it waited for in vain
    unanswered: dict[int, str] = field(default_factory=dict)  # decision index → why it found no request to answer
    first_inject_wall: float | None = None  # epoch (wall) when the first alert record was delivered
    first_action_wall: float | None = None  # epoch (wall) when the first step acted


def merge(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    """Sum two counters."""
    return {k: a.get(k, 0) + b.get(k, 0) for k in {*a, *b}}
