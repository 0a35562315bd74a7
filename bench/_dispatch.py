"""The service the pipeline benchmarks run (bench/pipeline.py, bench/_latency.py; bench/longrun.py reuses its step).

A runbook whose one step is a no-op actuator that records when it was dispatched (`APPLIED`, the latency
phase's join key) and touches no cloud, and the settings of a replica on the benchmark's broker (a fleet member when
given a changelog topic).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, ClassVar

from responder.actuators.base import ActuationContext, ActuationResult, Actuator, Params, PlanPreview
from responder.models.runbook import Runbook
from responder.settings import Settings

APPLIED: dict[str, float] = {}


class NoopParams(Params):
    access_key_id: str


class NoopActuator(Actuator[NoopParams]):
    """Records when it was dispatched; touches no cloud."""

    name = "bench.record_dispatch"
    params: ClassVar[type[NoopParams]] = NoopParams
    permissions = ("none:None",)

    def target(self, p: NoopParams) -> str:
        return p.access_key_id

    async def plan(self, p: NoopParams, ctx: ActuationContext) -> PlanPreview:
        return PlanPreview(target=p.access_key_id, summary="record")

    async def apply(self, p: NoopParams, ctx: ActuationContext) -> ActuationResult:
        APPLIED.setdefault(p.access_key_id, time.time())
        return ActuationResult(changed=True, target=p.access_key_id)

    async def verify(self, p: NoopParams, ctx: ActuationContext) -> bool:
        return p.access_key_id in APPLIED


class NoAws:
    async def call(self, service: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        raise AssertionError("the benchmark touches no cloud")


RUNBOOK = Runbook.model_validate({
    "id": "bench", "trigger": {"source": "guardduty", "type": "*IAMUser/*",
                               "conditions": [{"field": "event.severity.score", "op": "ge", "value": 5}]},
    "steps": [{"id": "dispatch", "actuator": "bench.record_dispatch",
               "with": {"access_key_id": "${event.resource.access_key.id}"}}],
})


def settings(bootstrap: str, topic: str, group: str, tmp: Path, changelog: str | None = None) -> Settings:
    """A replica's settings; with `changelog` a fleet member (RESPONDER_CHANGELOG_TOPIC), each with its own timeline."""
    return Settings(kafka_bootstrap=bootstrap, topics=[topic], group_id=group, session_timeout_ms=6000,
                    timeline_path=tmp / f"{group}-{os.getpid()}.jsonl", max_batch=2000, deadletter_topic="bench-dlq",
                    changelog_topic=changelog)
