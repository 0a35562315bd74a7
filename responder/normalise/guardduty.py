"""GuardDuty findings: raw (camelCase), EventBridge envelope (or its `detail` alone), GetFindings (PascalCase)."""

from __future__ import annotations

from typing import Any

from responder.errors import ValidationFailed
from responder.models.event import Event, Resource, ResourceKind
from responder.normalise import guardduty_fast
from responder.normalise.assemble import given_id, make_event, raw_id
from responder.normalise.fields import dig, parse_time, scored, text, valid_ip
from responder.normalise.guardduty_fast import mismatch as _mismatch
from responder.normalise.guardduty_fast import remote_ips as _remote_ips
from responder.normalise.registry import decoder
from responder.normalise.resources import compact, credential_kind, principal_kind, res
from responder.normalise.threats import GUARDDUTY
from responder.normalise.trusted import resource

_EMPTY: dict[str, Any] = {}  # read-only stand-in for a missing object


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


K = ResourceKind
_REMOTE = {"role": "remote"}


def _key_resources(key: Any, items: list[Resource]) -> None:
    """The access key (with its user's name, principal, user type and credential kind), then its IAM user or role
    when `userType` is IAMUser or AssumedRole."""
    user = text(key.get("userName"))
    key_id = key.get("accessKeyId")
    if key_id:
        attrs = {}
        if user:
            attrs["user_name"] = user
        principal, user_type = key.get("principalId"), key.get("userType")
        if principal:
            attrs["principal_id"] = principal
        if user_type:
            attrs["user_type"] = user_type
        ident = str(key_id).strip()
        credential = credential_kind(key_id)
        if credential:
            attrs["credential"] = credential
        items.append(resource(K.ACCESS_KEY, ident, attributes=attrs))
    if user:
        kind = principal_kind(key.get("userType"))
        if kind is not None:
            items.append(resource(kind, user, name=user))


def _resources(r: dict[str, Any], ips: list[str]) -> tuple[Resource, ...]:
    """Resources in acting order: key, its user or role, instance, buckets, workloads, remote IPs (hot path)."""
    items: list[Resource] = []
    key = r.get("accessKeyDetails")
    if key:
        _key_resources(key, items)
    inst = r.get("instanceDetails")
    if inst and inst.get("instanceId"):
        items.append(resource(K.INSTANCE, str(inst["instanceId"]),
                              attributes={"instance_type": inst["instanceType"]} if inst.get("instanceType") else {}))
    slow: list[Resource | None] = []
    for bucket in r.get("s3BucketDetails") or ():
        slow.append(res(K.BUCKET, bucket.get("name"), arn=bucket.get("arn")))
    eks = r.get("eksClusterDetails")
    if eks:
        slow.append(res(K.OTHER, eks.get("arn") or eks.get("name"), service="eks"))
    if "kubernetesDetails" in r:
        pod = dig(r, "kubernetesDetails", "kubernetesWorkloadDetails")
        if pod:
            slow.append(res(K.POD, pod.get("name"), namespace=pod.get("namespace")))
    if "ecsClusterDetails" in r:
        for c in dig(r, "ecsClusterDetails", "taskDetails", "containers") or ():
            slow.append(res(K.CONTAINER, c.get("name"), image=c.get("image")))
    items.extend(item for item in slow if item is not None)
    if ips:
        for ip in dict.fromkeys(ips) if len(ips) > 1 else ips:
            items.append(resource(K.IP, ip, attributes=_REMOTE))
    return tuple(items) if not slow else compact(items)


def finding_to_event(f: dict[str, Any], envelope: dict[str, Any] | None = None) -> Event:
    """One camelCase GuardDuty finding as an Event (the finding wins where the envelope disagrees)."""
    severity = f["severity"]
    try:
        score = float(severity)
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(f"guardduty severity is not a number: {f.get('severity')!r}") from exc
    env = envelope or _EMPTY
    mismatch = _mismatch(f, env) if env else []
    service = f.get("service") or _EMPTY
    action = service.get("action") or _EMPTY
    resource_ = f.get("resource") or _EMPTY
    key = resource_.get("accessKeyDetails") or _EMPTY
    candidates = _remote_ips(action) if action else []
    ips = [ip for ip in candidates if valid_ip(ip) is not None]
    info, api_call, dns = service.get("additionalInfo"), action.get("awsApiCallAction"), action.get("dnsRequestAction")
    finding_type = f["type"]
    # its own id, else its ARN or the envelope's, else the finding's hash: never "None", which two distinct findings
    # would share (the second one a "repeat" in their incident, its steps never run)
    ident = given_id(f.get("id"), f.get("arn"), env.get("id")) or raw_id("guardduty", f)
    return make_event(
        id=ident,
        source="guardduty",
        type=text(finding_type) or "",  # `unknown` (make_event) when missing or not text, never "None"
        severity=scored(score, severity),
        time=parse_time(f.get("updatedAt") or f.get("createdAt") or env.get("time")),
        account=f.get("accountId") or env.get("account"),
        region=f.get("region") or env.get("region"),
        cloud="aws",
        actor=key.get("principalId") or key.get("userName"),
        resources=_resources(resource_, ips),
        attributes={
            "title": f.get("title"),
            "arn": f.get("arn"),
            "resource_type": resource_.get("resourceType"),
            "sample": bool((info or _EMPTY).get("sample", False)),
            "archived": bool(service.get("archived", False)),
            "count": service.get("count"),
            "action_type": action.get("actionType"),
            "api": (api_call or _EMPTY).get("api"),
            "domain": (dns or _EMPTY).get("domain"),
            "invalid_ips": [ip for ip in candidates if ip not in ips] if len(ips) != len(candidates) else [],
            "envelope_mismatch": mismatch,
        },
        raw=envelope or f,
        subject=f"finding:{ident}",
        threat=GUARDDUTY.lookup(finding_type),
    )


# every `event.attributes` key this decoder can set (`responder runbooks validate` warns on others)
GUARDDUTY_ATTRIBUTES = (
    "title", "arn", "resource_type", "sample", "archived", "count", "action_type", "api", "domain",
    "invalid_ips", "envelope_mismatch",
)


@decoder("guardduty.eventbridge", _is_envelope, attributes=GUARDDUTY_ATTRIBUTES)
def decode_envelope(doc: Any) -> list[Event]:
    """An EventBridge 'GuardDuty Finding' event: the finding is `detail`."""
    detail = doc["detail"]
    if not _is_finding(detail):
        raise ValidationFailed("guardduty envelope without a finding in detail")
    return [guardduty_fast.event(detail, doc) or finding_to_event(detail, doc)]


@decoder("guardduty.getfindings", _is_getfindings, attributes=GUARDDUTY_ATTRIBUTES)
def decode_getfindings(doc: Any) -> list[Event]:
    """A GetFindings API response: one event per finding."""
    return [finding_to_event(_camel(f)) for f in doc["Findings"]]


@decoder("guardduty.detail", _is_detail_only, attributes=GUARDDUTY_ATTRIBUTES)
def decode_detail_only(doc: Any) -> list[Event]:
    """The `detail` part of an EventBridge event without its `source` (as some docs show it)."""
    return [guardduty_fast.event(doc["detail"], doc) or finding_to_event(doc["detail"], doc)]


@decoder("guardduty", _is_finding, attributes=GUARDDUTY_ATTRIBUTES)
def decode_finding(doc: Any) -> list[Event]:
    """A raw camelCase finding."""
    return [guardduty_fast.event(doc, None) or finding_to_event(doc)]
