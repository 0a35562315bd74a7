"""The responder drift event: a small documented JSON any model monitor can emit (schema in docs/events.md).

Required: `source: "responder.drift"`, model, version, metric, window, statistic, threshold and a
verdict of `detected` or `suspected`. Optional: id, time, account, region, endpoint, feature,
detector, severity (0-10, overrides the verdict's default) and free-form `details`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from responder.errors import ValidationFailed
from responder.models.event import Event, ResourceKind, Severity
from responder.normalise.assemble import given_id, make_event, raw_id
from responder.normalise.fields import parse_time, time_or_received
from responder.normalise.registry import decoder
from responder.normalise.resources import compact, res
from responder.normalise.threats import DRIFT

SOURCE = "responder.drift"
VERDICT_SCORES = {"detected": 7.5, "suspected": 5.0}


class DriftEvent(BaseModel):
    """The wire schema of a drift event (extra keys are refused, so typos fail loudly)."""

    model_config = ConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True)

    source: Literal["responder.drift"]
    model: str = Field(min_length=1, max_length=256)
    version: str = Field(min_length=1, max_length=128)
    metric: str = Field(min_length=1, max_length=128)
    window: str = Field(min_length=1, max_length=64, description="e.g. 1h, 24h, or an ISO 8601 interval")
    statistic: float
    threshold: float
    verdict: Literal["detected", "suspected"]
    id: str | None = Field(default=None, max_length=256)
    time: str | int | float | None = None
    account: str | None = None
    region: str | None = None
    endpoint: str | None = None
    feature: str | None = None
    detector: str | None = None
    severity: float | None = Field(default=None, ge=0, le=10)
    details: dict[str, JsonValue] = Field(default_factory=dict)


def _is_drift(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("source") == SOURCE


def drift_to_event(doc: dict[str, Any]) -> Event:
    """Validate against the schema, then build the Event (type `model.drift`)."""
    try:
        d = DriftEvent.model_validate(doc)
    except ValidationError as exc:
        raise ValidationFailed(f"drift event does not match the schema: {exc.errors(include_url=False)}") from exc
    if d.time is not None:
        when, inferred = parse_time(d.time), False
    else:
        when, inferred = time_or_received()
    score = d.severity if d.severity is not None else VERDICT_SCORES[d.verdict]
    resources = compact([
        res(ResourceKind.MODEL, d.model, name=d.model),
        res(ResourceKind.MODEL_VERSION, f"{d.model}:{d.version}", model=d.model, version=d.version),
        res(ResourceKind.ENDPOINT, d.endpoint),
    ])
    return make_event(
        id=given_id(d.id) or raw_id(SOURCE, doc),
        source=SOURCE,
        type="model.drift",
        severity=Severity.of(score, original=d.verdict if d.severity is None else d.severity),
        time=when,
        time_inferred=inferred,
        account=d.account,
        region=d.region,
        actor=d.detector,
        resources=resources,
        attributes={
            "model": d.model, "version": d.version, "metric": d.metric, "window": d.window,
            "statistic": d.statistic, "threshold": d.threshold, "verdict": d.verdict, "feature": d.feature,
            "details": d.details,
        },
        raw=doc,
        threat=DRIFT.lookup("model.drift"),
    )


# every `event.attributes` key this decoder can set (`responder runbooks validate` warns on others)
DRIFT_ATTRIBUTES = (
    "model", "version", "metric", "window", "statistic", "threshold", "verdict", "feature", "details",
)


@decoder("responder.drift", _is_drift, attributes=DRIFT_ATTRIBUTES, source=SOURCE)
def decode(doc: Any) -> list[Event]:
    """A responder drift event."""
    return [drift_to_event(doc)]
