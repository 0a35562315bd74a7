"""CloudWatch alarm state changes: the Lambda alarm-action form and the EventBridge form."""

from __future__ import annotations

from typing import Any

from responder.models.event import Event, Resource, ResourceKind, Severity
from responder.normalise.assemble import given_id, make_event, raw_id
from responder.normalise.fields import dig, text, time_or_received
from responder.normalise.registry import decoder
from responder.normalise.resources import compact, res
from responder.normalise.threats import CLOUDWATCH

K = ResourceKind
STATE_SCORES = {"ALARM": 5.0, "INSUFFICIENT_DATA": 2.0, "OK": 0.0}
# metric dimension → resource kind (SageMaker endpoints, Lambda functions, instances)
DIMENSIONS = {"EndpointName": K.ENDPOINT, "Endpoint": K.ENDPOINT, "FunctionName": K.FUNCTION,
              "InstanceId": K.INSTANCE, "BucketName": K.BUCKET}


def _is_lambda_form(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("source") == "aws.cloudwatch" and isinstance(doc.get("alarmData"), dict)


def _is_eventbridge_form(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("detail-type") == "CloudWatch Alarm State Change" \
        and isinstance(doc.get("detail"), dict)


# API Gateway's own metrics carry ApiName/ApiId and Stage but never the caller's key. The documented
# convention (docs/threats.md, "CloudWatch alarms"): a metric filter on the stage's access log
# (`$context.identity.apiKeyId`) publishes per-key request counts with an `ApiKeyId` dimension (or
# `ApiKey`), next to the API's `ApiId`/`ApiName` and `Stage`; the alarm on it names the key.
API_KEY_DIMENSIONS = ("ApiKeyId", "ApiKey")


def _api_key(dims: dict[str, Any]) -> Resource | None:
    key = next((dims[d] for d in API_KEY_DIMENSIONS if dims.get(d)), None)
    return res(K.API_KEY, key, api_id=dims.get("ApiId"), api_name=dims.get("ApiName"), stage=dims.get("Stage"),
               usage_plan=dims.get("UsagePlanId"))


def _metric_resources(config: dict[str, Any]) -> list[Resource | None]:
    out: list[Resource | None] = []
    for metric in config.get("metrics") or []:
        dims = dig(metric, "metricStat", "metric", "dimensions") or {}
        out.append(_api_key(dims))
        for name, kind in DIMENSIONS.items():
            if dims.get(name):
                out.append(res(kind, dims[name], schedule=dims.get("MonitoringSchedule") or dims.get("ScheduleName")))
    return out


def _alarm_id(arn: Any, data: dict[str, Any], env: dict[str, Any]) -> str:
    """`alarm@transition time`; the record's hash when either is missing (`None@None` would merge unrelated
    alarms, `alarm@None` every transition of one alarm)."""
    alarm, at = given_id(arn, data.get("alarmName")), given_id(dig(data, "state", "timestamp"), env.get("time"))
    return f"{alarm}@{at}" if alarm is not None and at is not None else raw_id("cloudwatch", env)


def alarm_to_event(data: dict[str, Any], env: dict[str, Any], arn: Any) -> Event:
    """One alarm transition; the type is the new state (ALARM, OK, INSUFFICIENT_DATA)."""
    state = text(dig(data, "state", "value"))  # None (type `unknown`) when missing or not text
    config = data.get("configuration") or {}
    metrics = [dig(m, "metricStat", "metric") for m in config.get("metrics") or [] if dig(m, "metricStat", "metric")]
    when, inferred = time_or_received(env.get("time"), dig(data, "state", "timestamp"))
    alarm = res(K.OTHER, arn or data.get("alarmName"), name=data.get("alarmName"), arn=arn, service="cloudwatch")
    return make_event(
        id=_alarm_id(arn, data, env),
        source="cloudwatch",
        type=state or "",
        severity=Severity.of(STATE_SCORES.get(state or "", 2.0), original=state),
        time=when,
        time_inferred=inferred,
        account=env.get("accountId") or env.get("account"),
        region=env.get("region"),
        cloud="aws",
        resources=compact([*_metric_resources(config), alarm]),
        attributes={
            "alarm_name": data.get("alarmName"),
            "previous_state": dig(data, "previousState", "value"),
            "reason": dig(data, "state", "reason"),
            "namespaces": sorted({str(m.get("namespace")) for m in metrics if m.get("namespace")}),
            "metric_names": [m.get("name") for m in metrics if m.get("name")],
            "description": config.get("description"),
        },
        raw=env,
        threat=CLOUDWATCH.lookup(data.get("alarmName")) if state == "ALARM" else None,
    )


# every `event.attributes` key this decoder can set (`responder runbooks validate` warns on others)
CLOUDWATCH_ATTRIBUTES = (
    "alarm_name", "previous_state", "reason", "namespaces", "metric_names", "description",
)


@decoder("cloudwatch", _is_lambda_form, attributes=CLOUDWATCH_ATTRIBUTES)
def decode_lambda_form(doc: Any) -> list[Event]:
    """`{"source": "aws.cloudwatch", "alarmArn": ..., "alarmData": {...}}` (an alarm's Lambda action)."""
    return [alarm_to_event(doc["alarmData"], doc, doc.get("alarmArn"))]


@decoder("cloudwatch.eventbridge", _is_eventbridge_form, attributes=CLOUDWATCH_ATTRIBUTES)
def decode_eventbridge_form(doc: Any) -> list[Event]:
    """`detail-type: CloudWatch Alarm State Change`, the alarm in `detail`."""
    arn = (doc.get("resources") or [None])[0]
    return [alarm_to_event(doc["detail"], doc, arn)]
