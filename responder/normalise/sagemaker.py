"""SageMaker Model Monitor and Clarify `constraint_violations.json` reports: one event per violation.

The report carries no severity, endpoint or time. A producer may wrap it with that context
(`endpoint_name`, `monitoring_schedule_name`, `model_name`, `account`, `region`, `time`, or the
`EndpointName`/`MonitoringScheduleName`/`ScheduledTime` keys of a monitoring execution); otherwise the
time is the record's receive time and the severity is medium.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from responder.models.event import Event, ResourceKind, Severity
from responder.normalise.assemble import each_part, make_event, raw_id
from responder.normalise.fields import RECEIVED, severity_from_label, text, time_or_received
from responder.normalise.registry import decoder
from responder.normalise.resources import compact, res
from responder.normalise.threats import SAGEMAKER

K = ResourceKind
DEFAULT_SCORE = 5.0


def _is_report(doc: Any) -> bool:
    violations = doc.get("violations") if isinstance(doc, dict) else None
    return isinstance(violations, list) and bool(violations) and isinstance(violations[0], dict) \
        and "constraint_check_type" in violations[0]


def _ctx(doc: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if doc.get(key) not in (None, ""):
            return doc[key]
    return None


def _subject(v: dict[str, Any]) -> str:
    if v.get("feature_name"):
        return f"feature:{v['feature_name']}"
    if v.get("facet"):
        return f"facet:{v['facet']}={v.get('facet_value')}:{v.get('metric_name')}"
    return f"label:{v.get('label')}:{v.get('metric_name')}"


# what names one monitoring run (a monitoring execution's, an EventBridge processing-job event's, a wrapper's keys)
RUN_KEYS = ("ProcessingJobArn", "processing_job_arn", "ProcessingJobName", "processing_job_name", "CreationTime",
            "execution_time", "ReportUri", "report_uri")


def _id(v: dict[str, Any], report: dict[str, Any], endpoint: Any, schedule: Any, when: datetime,
        inferred: bool) -> str:
    """A violation's id, distinct for each monitoring run: from the violation, the endpoint and schedule, and the run
    (its processing job, execution time or report uri, when the record names one); with none of those and no time,
    the record's broker time, which a redelivery keeps and the next run's record does not share."""
    run = {key: report[key] for key in RUN_KEYS if report.get(key) not in (None, "")}
    received = inferred and not run and RECEIVED.get() is not None
    parts: dict[str, Any] = {"v": v, "endpoint": endpoint, "schedule": schedule,
                             "time": when.isoformat() if not inferred or received else None}
    if run:  # absent otherwise: a report's id without run names is what it was before they were read
        parts["run"] = run
    return raw_id("sagemaker-model-monitor", parts)


def violation_to_event(v: dict[str, Any], report: dict[str, Any]) -> Event:
    """One violation of a report, with whatever context the wrapper gave."""
    endpoint = _ctx(report, "endpoint_name", "EndpointName")
    model = _ctx(report, "model_name", "ModelName")
    schedule = _ctx(report, "monitoring_schedule_name", "MonitoringScheduleName")
    when, inferred = time_or_received(_ctx(report, "time", "ScheduledTime"))
    sev = report.get("severity")
    severity = severity_from_label(sev, default=DEFAULT_SCORE) if sev else Severity.of(DEFAULT_SCORE)
    subject = _subject(v)
    resources = compact([res(K.ENDPOINT, endpoint, schedule=schedule), res(K.MODEL, model)])
    return make_event(
        id=_id(v, report, endpoint, schedule, when, inferred),
        source="sagemaker-model-monitor",
        type=str(v["constraint_check_type"]),
        severity=severity,
        time=when,
        time_inferred=inferred,
        account=_ctx(report, "account", "AccountId"),
        region=_ctx(report, "region", "Region"),
        cloud="aws",
        resources=resources,
        attributes={
            "feature_name": v.get("feature_name"),
            "metric_name": v.get("metric_name"),
            "facet": v.get("facet"),
            "facet_value": v.get("facet_value"),
            "label": v.get("label"),
            "description": text(v.get("description")),
            "monitoring_schedule": schedule,
            "report_version": report.get("version"),
        },
        raw=v,
        subject=f"{endpoint or 'report'}:{subject}",
        threat=SAGEMAKER.lookup(v["constraint_check_type"]),
    )


# every `event.attributes` key this decoder can set (`responder runbooks validate` warns on others)
SAGEMAKER_ATTRIBUTES = (
    "feature_name", "metric_name", "facet", "facet_value", "label", "description", "monitoring_schedule",
    "report_version",
)


@decoder("sagemaker-model-monitor", _is_report, attributes=SAGEMAKER_ATTRIBUTES)
def decode(doc: Any) -> list[Event]:
    """A constraint-violations report (data quality, model quality, bias drift, feature attribution drift)."""
    return each_part("sagemaker violation", doc["violations"], lambda v: [violation_to_event(v, doc)])
