"""GuardDuty findings: raw (camelCase), EventBridge envelope, and GetFindings responses (PascalCase)."""

from __future__ import annotations

from typing import Any

from responder.errors import ValidationFailed
from responder.models.event import Event, Resource, ResourceKind, Severity, stable_id
from responder.normalise.fields import dig, parse_time
from responder.normalise.registry import decoder


def _camel(doc: Any) -> Any:
    """Lower the first letter of every key (GetFindings' PascalCase to the raw form)."""
    if isinstance(doc, dict):
        return {(k[:1].lower() + k[1:] if isinstance(k, str) else k): _camel(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_camel(v) for v in doc]
    return doc


def _is_finding(doc: Any) -> bool:
    return isinstance(doc, dict) and "type" in doc and "severity" in doc and "resource" in doc and "service" in doc


def _is_envelope(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("source") == "aws.guardduty" and "detail" in doc


def _is_getfindings(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("Findings"), list)


def _resources(f: dict[str, Any]) -> list[Resource]:
    res = f.get("resource") or {}
    out: list[Resource] = []
    key = res.get("accessKeyDetails") or {}
    if key.get("accessKeyId"):
        out.append(
            Resource(
                kind=ResourceKind.ACCESS_KEY,
                id=str(key["accessKeyId"]),
                attributes={"user_name": key.get("userName"), "user_type": key.get("userType")},
            )
        )
    if key.get("userName"):
        kind = ResourceKind.IAM_ROLE if key.get("userType") == "AssumedRole" else ResourceKind.IAM_USER
        out.append(Resource(kind=kind, id=str(key["userName"]), name=str(key["userName"])))
    inst = res.get("instanceDetails") or {}
    if inst.get("instanceId"):
        out.append(Resource(kind=ResourceKind.INSTANCE, id=str(inst["instanceId"])))
    for bucket in res.get("s3BucketDetails") or []:
        if bucket.get("name"):
            out.append(Resource(kind=ResourceKind.BUCKET, id=str(bucket["name"]), arn=bucket.get("arn")))
    remote = dig(f, "service", "action", "awsApiCallAction", "remoteIpDetails", "ipAddressV4") or dig(
        f, "service", "action", "networkConnectionAction", "remoteIpDetails", "ipAddressV4"
    )
    if remote:
        out.append(Resource(kind=ResourceKind.IP, id=str(remote)))
    return out


def finding_to_event(f: dict[str, Any], envelope: dict[str, Any] | None = None) -> Event:
    """One camelCase GuardDuty finding as an Event."""
    try:
        score = float(f["severity"])
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(f"guardduty severity is not a number: {f.get('severity')!r}") from exc
    resources = tuple(_resources(f))
    account = str(f.get("accountId") or (envelope or {}).get("account") or "") or None
    region = f.get("region") or (envelope or {}).get("region")
    primary = next((r for r in resources if r.kind != ResourceKind.IP), None)
    subject = f"{primary.kind}:{primary.id}" if primary else f"finding:{f.get('id')}"
    incident_key = f"{account or '-'}:{subject}"
    actor = dig(f, "resource", "accessKeyDetails", "principalId") or dig(f, "resource", "accessKeyDetails", "userName")
    return Event(
        id=str(f.get("id") or stable_id(str(f.get("arn")), str(f.get("updatedAt")))),
        source="guardduty",
        type=str(f["type"]),
        severity=Severity.of(score, original=f["severity"]),
        time=parse_time(f.get("updatedAt") or f.get("createdAt") or (envelope or {}).get("time")),
        account=account,
        region=region,
        cloud="aws",
        actor=actor,
        resources=resources,
        incident_key=incident_key,
        attributes={
            "title": f.get("title"),
            "arn": f.get("arn"),
            "sample": bool(dig(f, "service", "additionalInfo", "sample", default=False)),
            "archived": bool(dig(f, "service", "archived", default=False)),
            "count": dig(f, "service", "count"),
            "action_type": dig(f, "service", "action", "actionType"),
        },
        raw=envelope or f,
    )


@decoder("guardduty.eventbridge", _is_envelope)
def decode_envelope(doc: Any) -> list[Event]:
    """An EventBridge 'GuardDuty Finding' event: the finding is `detail`."""
    detail = doc["detail"]
    if not _is_finding(detail):
        raise ValidationFailed("guardduty envelope without a finding in detail")
    return [finding_to_event(detail, doc)]


@decoder("guardduty.getfindings", _is_getfindings)
def decode_getfindings(doc: Any) -> list[Event]:
    """A GetFindings API response: one event per finding."""
    return [finding_to_event(_camel(f)) for f in doc["Findings"]]


@decoder("guardduty", _is_finding)
def decode_finding(doc: Any) -> list[Event]:
    """A raw camelCase finding (or the `detail` of an EventBridge event)."""
    return [finding_to_event(doc)]
