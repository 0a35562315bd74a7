"""The GuardDuty fast lane: a well-formed finding of the common shape becomes its Event in one pass.

`guardduty.finding_to_event` reads any finding, of any value types, and builds the Event through
`assemble.make_event`'s generic clean-up and checks. Most findings have one shape: string ids and names,
a numeric severity, a `…Z` time, an access key and/or instance, remote IPs. `event()` builds exactly what
`finding_to_event` would from such a finding, checking each value's type as it reads it so that the
models' constraints hold by construction, and returns None the moment anything differs (another type, an
empty or over-long id, buckets or workloads among the resources, an error of any kind): the general
decoder then decides, raising its own error for a bad record. It never raises and has no side effects.
tests/unit/test_guardduty_fast.py checks it against the general decoder over the corpus and over
hypothesis-mutated findings.
"""

from __future__ import annotations

from typing import Any

from responder.models.event import Event, Resource, ResourceKind
from responder.normalise import trusted
from responder.normalise.fields import parse_time, scored, valid_ip
from responder.normalise.resources import KEY_PREFIXES
from responder.normalise.threats import GUARDDUTY

_IP_ACTIONS = ("awsApiCallAction", "networkConnectionAction", "kubernetesApiCallAction", "rdsLoginAttemptAction")
_SLOW = ("s3BucketDetails", "eksClusterDetails", "kubernetesDetails", "ecsClusterDetails")  # general path only
_EMPTY: dict[str, Any] = {}  # read-only stand-in for a missing object
_ACCESS_KEY, _IAM_ROLE, _IAM_USER = ResourceKind.ACCESS_KEY, ResourceKind.IAM_ROLE, ResourceKind.IAM_USER
_INSTANCE, _IP = ResourceKind.INSTANCE, ResourceKind.IP


def remote_ips(action: dict[str, Any]) -> list[Any]:
    """The remote IPv4 addresses a finding's action names, in order (API call, connection, probes…)."""
    out = []
    for key in _IP_ACTIONS:
        found = action.get(key)
        if found:
            ip = (found.get("remoteIpDetails") or _EMPTY).get("ipAddressV4")
            if ip:
                out.append(ip)
    probes = action.get("portProbeAction")
    for probe in (probes and probes.get("portProbeDetails")) or ():
        ip = (probe.get("remoteIpDetails") or _EMPTY).get("ipAddressV4")
        if ip:
            out.append(ip)
    return out


def mismatch(f: dict[str, Any], env: dict[str, Any]) -> list[str]:
    """`account` and/or `region` when the envelope names another one than its finding."""
    out = []
    account, region = f.get("accountId"), f.get("region")
    if account and env.get("account") and str(env["account"]) != str(account):
        out.append("account")
    if region and env.get("region") and str(env["region"]) != str(region):
        out.append("region")
    return out


def _key(key: dict[str, Any], items: list[Resource]) -> bool:
    """Append the access key and its user or role; False when a value is not of the common shape."""
    key_id, user, principal, user_type = key.get("accessKeyId"), key.get("userName"), key.get("principalId"), \
        key.get("userType")
    if (key_id is not None and type(key_id) is not str) or (user is not None and type(user) is not str) or \
            (principal is not None and type(principal) is not str) or \
            (user_type is not None and type(user_type) is not str):
        return False
    user = user.strip() or None if user else None
    if key_id:
        attrs = {}
        if user:
            attrs["user_name"] = user
        if principal:
            attrs["principal_id"] = principal
        if user_type:
            attrs["user_type"] = user_type
        ident = key_id.strip()
        credential = KEY_PREFIXES.get(ident[:4])  # `credential_kind` of a stripped str
        if credential:
            attrs["credential"] = credential
        found = trusted.fresh_resource(_ACCESS_KEY, ident, None, attrs)
        if found is None:
            return False
        items.append(found)
    if user:
        found = trusted.fresh_resource(_IAM_ROLE if user_type == "AssumedRole" else _IAM_USER, user, user, {})
        if found is None:
            return False
        items.append(found)
    return True


def _resources(r: dict[str, Any], ips: list[str]) -> tuple[Resource, ...] | None:
    """`guardduty._resources` for a resource of the common shape (no buckets or workloads), else None."""
    items: list[Resource] = []
    for name in _SLOW:
        if name in r:
            return None
    key = r.get("accessKeyDetails")
    if key and (type(key) is not dict or not _key(key, items)):
        return None
    inst = r.get("instanceDetails")
    if inst:
        instance_id = inst.get("instanceId")
        if instance_id:
            if type(instance_id) is not str:
                return None
            instance_type = inst.get("instanceType")
            found = trusted.fresh_resource(_INSTANCE, instance_id, None,
                                           {"instance_type": instance_type} if instance_type else {})
            if found is None:
                return None
            items.append(found)
    for ip in dict.fromkeys(ips) if len(ips) > 1 else ips:
        found = trusted.fresh_resource(_IP, ip, None, {"role": "remote"})
        if found is None:
            return None
        items.append(found)
    return tuple(items)


def _kept(value: Any) -> bool:
    """What `make_event` keeps of an attribute: not None, "", [] or {}."""
    return value is not None and (bool(value) or (value != "" and value != [] and value != {}))


def event(f: dict[str, Any], envelope: dict[str, Any] | None) -> Event | None:
    """`finding_to_event(f, envelope)` for a finding of the common shape; None for any other (see module doc)."""
    try:
        return None if trusted.validating_now else _event(f, envelope)
    except Exception:  # noqa: BLE001 - whatever the lane cannot read, the general decoder reads or rejects
        return None


def _event(f: dict[str, Any], envelope: dict[str, Any] | None) -> Event | None:
    severity, finding_id, finding_type = f["severity"], f.get("id"), f["type"]
    if (type(severity) is not int and type(severity) is not float) or type(finding_id) is not str \
            or not finding_id or type(finding_type) is not str or not finding_type.strip():
        return None
    env = envelope or _EMPTY
    account, region = f.get("accountId") or env.get("account"), f.get("region") or env.get("region")
    if (account is not None and type(account) is not str) or (region is not None and type(region) is not str):
        return None
    service = f.get("service") or _EMPTY
    action = service.get("action") or _EMPTY
    resource = f.get("resource") or _EMPTY
    key = resource.get("accessKeyDetails") or _EMPTY
    actor = key.get("principalId") or key.get("userName")
    candidates = remote_ips(action) if action else []
    ips = [ip for ip in candidates if valid_ip(ip) is not None]
    resources = _resources(resource, ips)
    if resources is None or (actor is not None and type(actor) is not str):
        return None
    account = account or None
    attrs = {}
    for name, value in (("title", f.get("title")), ("arn", f.get("arn")),
                        ("resource_type", resource.get("resourceType"))):
        if value or _kept(value):
            attrs[name] = value
    attrs["sample"] = bool((service.get("additionalInfo") or _EMPTY).get("sample", False))
    attrs["archived"] = bool(service.get("archived", False))
    for name, value in (("count", service.get("count")), ("action_type", action.get("actionType")),
                        ("api", (action.get("awsApiCallAction") or _EMPTY).get("api")),
                        ("domain", (action.get("dnsRequestAction") or _EMPTY).get("domain"))):
        if value or _kept(value):
            attrs[name] = value
    if len(ips) != len(candidates):
        attrs["invalid_ips"] = [ip for ip in candidates if ip not in ips]
    if env:
        different = mismatch(f, env)
        if different:
            attrs["envelope_mismatch"] = different
    subject = f"finding:{finding_id}"  # the incident's: the first resource that is not an IP, else the first
    for primary in resources:
        if primary.kind is not _IP:
            break
    else:
        primary = resources[0] if resources else None  # type: ignore[assignment]
    if primary is not None:
        subject = f"{primary.kind._value_}:{primary.id}"
    return trusted.fresh_event({
        "id": finding_id,
        "source": "guardduty",
        "type": finding_type.strip(),
        "severity": scored(float(severity), severity),
        "time": parse_time(f.get("updatedAt") or f.get("createdAt") or env.get("time")),
        "account": account,
        "region": region or None,
        "cloud": "aws",
        "actor": actor or None,
        "resources": resources,
        "incident_key": f"{account or '-'}:{subject}",
        "attributes": attrs,
        "threat": GUARDDUTY.lookup(finding_type),
        "raw": envelope or f,
    })
