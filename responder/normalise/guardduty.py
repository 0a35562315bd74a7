"""GuardDuty findings: raw (camelCase), EventBridge envelope (or its `detail` alone), GetFindings (PascalCase)."""

from __future__ import annotations

from typing import Any

from responder.errors import ValidationFailed
from responder.models.event import Event, ResourceKind, Severity
from responder.normalise.assemble import make_event
from responder.normalise.fields import dig, parse_time, text, valid_ip
from responder.normalise.registry import decoder
from responder.normalise.resources import access_key, compact, ip_resource, res


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


def _is_detail_only(doc: Any) -> bool:
    return isinstance(doc, dict) and "source" not in doc and _is_finding(doc.get("detail"))


def _is_getfindings(doc: Any) -> bool:
    found = doc.get("Findings") if isinstance(doc, dict) else None
    return isinstance(found, list) and bool(found) and isinstance(found[0], dict) and "Type" in found[0] \
        and "Service" in found[0]


def _remote_ips(action: dict[str, Any]) -> list[Any]:
    out = []
    for key in ("awsApiCallAction", "networkConnectionAction", "kubernetesApiCallAction", "rdsLoginAttemptAction"):
        out.append(dig(action, key, "remoteIpDetails", "ipAddressV4"))
    for probe in dig(action, "portProbeAction", "portProbeDetails", default=[]) or []:
        out.append(dig(probe, "remoteIpDetails", "ipAddressV4"))
    return [ip for ip in out if ip]


def _resources(f: dict[str, Any]) -> tuple[Any, ...]:
    r = f.get("resource") or {}
    key = r.get("accessKeyDetails") or {}
    user = text(key.get("userName"))
    items = [access_key(key.get("accessKeyId"), user, principal_id=key.get("principalId"),
                        user_type=key.get("userType"))]
    if user:
        kind = ResourceKind.IAM_ROLE if key.get("userType") == "AssumedRole" else ResourceKind.IAM_USER
        items.append(res(kind, user, name=user))
    inst = r.get("instanceDetails") or {}
    items.append(res(ResourceKind.INSTANCE, inst.get("instanceId"), instance_type=inst.get("instanceType")))
    for bucket in r.get("s3BucketDetails") or []:
        items.append(res(ResourceKind.BUCKET, bucket.get("name"), arn=bucket.get("arn")))
    eks = r.get("eksClusterDetails") or {}
    items.append(res(ResourceKind.OTHER, eks.get("arn") or eks.get("name"), service="eks"))
    pod = dig(r, "kubernetesDetails", "kubernetesWorkloadDetails") or {}
    items.append(res(ResourceKind.POD, pod.get("name"), namespace=pod.get("namespace")))
    for c in (dig(r, "ecsClusterDetails", "taskDetails", "containers") or []):
        items.append(res(ResourceKind.CONTAINER, c.get("name"), image=c.get("image")))
    action = dig(f, "service", "action") or {}
    items.extend(ip_resource(ip, role="remote") for ip in _remote_ips(action))
    return compact(items)


def finding_to_event(f: dict[str, Any], envelope: dict[str, Any] | None = None) -> Event:
    """One camelCase GuardDuty finding as an Event (the finding wins where the envelope disagrees)."""
    try:
        score = float(f["severity"])
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(f"guardduty severity is not a number: {f.get('severity')!r}") from exc
    env = envelope or {}
    account = f.get("accountId") or env.get("account")
    region = f.get("region") or env.get("region")
    mismatch = [k for k, mine in (("account", f.get("accountId")), ("region", f.get("region")))
                if mine and env.get(k) and str(env[k]) != str(mine)]
    action = dig(f, "service", "action") or {}
    invalid_ips = [ip for ip in _remote_ips(action) if valid_ip(ip) is None]
    return make_event(
        id=str(f.get("id") or f.get("arn") or env.get("id")),
        source="guardduty",
        type=str(f["type"]),
        severity=Severity.of(score, original=f["severity"]),
        time=parse_time(f.get("updatedAt") or f.get("createdAt") or env.get("time")),
        account=account,
        region=region,
        cloud="aws",
        actor=dig(f, "resource", "accessKeyDetails", "principalId")
        or dig(f, "resource", "accessKeyDetails", "userName"),
        resources=_resources(f),
        attributes={
            "title": f.get("title"),
            "arn": f.get("arn"),
            "resource_type": dig(f, "resource", "resourceType"),
            "sample": bool(dig(f, "service", "additionalInfo", "sample", default=False)),
            "archived": bool(dig(f, "service", "archived", default=False)),
            "count": dig(f, "service", "count"),
            "action_type": action.get("actionType"),
            "api": dig(action, "awsApiCallAction", "api"),
            "domain": dig(action, "dnsRequestAction", "domain"),
            "invalid_ips": invalid_ips,
            "envelope_mismatch": mismatch,
        },
        raw=envelope or f,
        subject=f"finding:{f.get('id')}",
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


@decoder("guardduty.detail", _is_detail_only)
def decode_detail_only(doc: Any) -> list[Event]:
    """The `detail` part of an EventBridge event without its `source` (as some docs show it)."""
    return [finding_to_event(doc["detail"], doc)]


@decoder("guardduty", _is_finding)
def decode_finding(doc: Any) -> list[Event]:
    """A raw camelCase finding."""
    return [finding_to_event(doc)]
