"""The GuardDuty fast lane: a well-formed finding of the common shape becomes its Event in one pass.

`guardduty.finding_to_event` reads any finding, of any value types, and builds the Event through
`assemble.make_event`'s generic clean-up and checks. Most findings have one shape: string ids and names,
a numeric severity, a `…Z` time, an access key and/or instance, remote IPs. `event()` builds exactly what
`finding_to_event` would from such a finding, checking each value's type as it reads it so that the
models' constraints hold by construction, and returns None the moment anything differs (another type, an
empty, blank, `digest:` or over-long id, buckets or workloads among the resources, an error of any kind): the general
decoder then decides, raising its own error for a bad record. It never raises and has no side effects
(beyond remembering what a finding type strips to and its threat row, for at most 4,096 types).
It is one function on purpose: each call, helper and intermediate list it avoids is a tenth of a µs on the
hot path (docs/development.md, "Throughput of the pipeline").
tests/unit/test_guardduty_fast.py checks it against the general decoder over the corpus and over
hypothesis-mutated findings.
"""

from __future__ import annotations

from datetime import UTC, datetime
from socket import AF_INET as _AF_INET
from typing import Any

from responder.models.event import Event, Resource, ResourceKind, builder, tuple_builder
from responder.models.threat import Threat
from responder.normalise import trusted
from responder.normalise.assemble import DERIVED
from responder.normalise.fields import check_quad, parse_time, scored, valid_ip
from responder.normalise.resources import KEY_PREFIXES
from responder.normalise.threat_table import _MEMO_KEY, _MEMO_SIZE
from responder.normalise.threats import GUARDDUTY

_IP_ACTIONS = ("awsApiCallAction", "networkConnectionAction", "kubernetesApiCallAction", "rdsLoginAttemptAction")
_EMPTY: dict[str, Any] = {}  # read-only stand-in for a missing object
_ACCESS_KEY, _IAM_ROLE, _IAM_USER = ResourceKind.ACCESS_KEY, ResourceKind.IAM_ROLE, ResourceKind.IAM_USER
_INSTANCE, _IP = ResourceKind.INSTANCE, ResourceKind.IP
_new_resources, _new_event = tuple_builder(Resource), builder(Event)
_fromisoformat = datetime.fromisoformat
_TYPES: dict[str, tuple[str, Threat | None]] = {}  # finding type → (stripped, threat row): a small vocabulary


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


def _kept(value: Any) -> bool:
    """What `make_event` keeps of an attribute: not None, "", [] or {}."""
    return value is not None and (bool(value) or (value != "" and value != [] and value != {}))


def _typed(finding_type: Any) -> tuple[str, Threat | None] | None:
    """The stripped type and `GUARDDUTY.lookup` of a str finding type (None when not a str or blank), remembered
    for at most `_MEMO_SIZE` types of at most `_MEMO_KEY` characters (the threat table's own bounds)."""
    if type(finding_type) is not str or not finding_type.strip():
        return None
    out = (finding_type.strip(), GUARDDUTY.lookup(finding_type))
    if len(_TYPES) < _MEMO_SIZE and len(finding_type) <= _MEMO_KEY:
        _TYPES[finding_type] = out
    return out


def event(f: dict[str, Any], envelope: dict[str, Any] | None) -> Event | None:
    """`finding_to_event(f, envelope)` for a finding of the common shape; None for any other (see module doc)."""
    if trusted.validating_now:
        return None
    try:  # whatever the lane cannot read, the general decoder reads or rejects
        severity, finding_id, finding_type = f["severity"], f.get("id"), f["type"]
        if (type(severity) is not int and type(severity) is not float) or type(finding_id) is not str \
                or not finding_id or finding_id.isspace() or finding_id.startswith(DERIVED):  # `given_id`'s refusals
            return None
        typed = _TYPES.get(finding_type) or _typed(finding_type)
        if typed is None:
            return None
        env = envelope or _EMPTY
        f_account, f_region, e_account, e_region = f.get("accountId"), f.get("region"), env.get("account"), \
            env.get("region")
        account, region = f_account or e_account, f_region or e_region
        if (account is not None and type(account) is not str) or (region is not None and type(region) is not str):
            return None
        service = f["service"] or _EMPTY  # `_is_finding` makes sure of both keys before the lane is called
        action = service.get("action") or _EMPTY
        resource = f["resource"] or _EMPTY
        if "s3BucketDetails" in resource or "eksClusterDetails" in resource or "kubernetesDetails" in resource \
                or "ecsClusterDetails" in resource:  # the general path's resources
            return None
        items: list[dict[str, Any]] = []  # the resources' values in acting order: key, user or role, instance, IPs
        subject = subject_id = None  # the incident's: the first that is not an IP (they come last), else the first
        key = resource.get("accessKeyDetails")
        actor = None
        if key:
            if type(key) is not dict:
                return None
            key_id, user, principal, user_type = key.get("accessKeyId"), key.get("userName"), \
                key.get("principalId"), key.get("userType")
            if (key_id is not None and type(key_id) is not str) or (user is not None and type(user) is not str) or \
                    (principal is not None and type(principal) is not str) or \
                    (user_type is not None and type(user_type) is not str):
                return None
            actor = principal or user or None
            user = user.strip() or None if user else None
            if key_id:
                if user and principal and user_type:  # the common case, as one literal
                    key_attrs = {"user_name": user, "principal_id": principal, "user_type": user_type}
                else:
                    key_attrs = {}
                    if user:
                        key_attrs["user_name"] = user
                    if principal:
                        key_attrs["principal_id"] = principal
                    if user_type:
                        key_attrs["user_type"] = user_type
                ident = key_id.strip()
                credential = KEY_PREFIXES.get(ident[:4])  # `credential_kind` of a stripped str
                if credential:
                    key_attrs["credential"] = credential
                if not 0 < len(ident) <= 2048:
                    return None
                items.append({"kind": _ACCESS_KEY, "id": ident, "name": None, "arn": None, "attributes": key_attrs})
                subject, subject_id = "access_key", ident
            if user:
                if len(user) > 2048:
                    return None
                # an IAM user or role only by `userType` (`resources.PRINCIPAL_KINDS`); a FederatedUser's name is
                # its caller's choice, Root is no IAM user: those and a missing type keep only the key
                kind = _IAM_USER if user_type == "IAMUser" else _IAM_ROLE if user_type == "AssumedRole" else None
                if kind is not None:
                    items.append({"kind": kind, "id": user, "name": user, "arn": None, "attributes": {}})
                    if subject is None:
                        subject, subject_id = kind._value_, user
        inst = resource.get("instanceDetails")
        if inst:
            instance_id = inst.get("instanceId")
            if instance_id:
                if type(instance_id) is not str or len(instance_id) > 2048:
                    return None
                instance_type = inst.get("instanceType")
                items.append({"kind": _INSTANCE, "id": instance_id, "name": None, "arn": None,
                              "attributes": {"instance_type": instance_type} if instance_type else {}})
                if subject is None:
                    subject, subject_id = "instance", instance_id
        api_call = action.get("awsApiCallAction")
        if len(action) == 2 and api_call and "actionType" in action:  # an API call alone: `remote_ips`, inline
            ip = (api_call.get("remoteIpDetails") or _EMPTY).get("ipAddressV4")
            candidates = [ip] if ip else []
        else:
            candidates = remote_ips(action) if action else []
        ips = candidates
        try:  # dotted quads are checked here; anything else by `valid_ip` (IPv6, or invalid)
            for ip in candidates:
                check_quad(_AF_INET, ip)
        except (OSError, ValueError, TypeError):
            ips = [ip for ip in candidates if valid_ip(ip) is not None]
        for ip in dict.fromkeys(ips) if len(ips) > 1 else ips:  # a valid address is 1–64 characters
            items.append({"kind": _IP, "id": ip, "name": None, "arn": None, "attributes": {"role": "remote"}})
            if subject is None:
                subject, subject_id = "ip", ip
        # the attributes `make_event` keeps (not None, "", [] or {}), in `finding_to_event`'s order
        title, arn, resource_type = f.get("title"), f.get("arn"), resource.get("resourceType")
        attrs: dict[str, Any] = {}
        if title or (title is not None and _kept(title)):
            attrs["title"] = title
        if arn or (arn is not None and _kept(arn)):
            attrs["arn"] = arn
        if resource_type or (resource_type is not None and _kept(resource_type)):
            attrs["resource_type"] = resource_type
        attrs["sample"] = not not (service.get("additionalInfo") or _EMPTY).get("sample", False)  # noqa: SIM208
        attrs["archived"] = not not service.get("archived", False)  # noqa: SIM208 - `bool(x)` without a call
        count, action_type = service.get("count"), action.get("actionType")
        api, domain = (api_call or _EMPTY).get("api"), \
            (action.get("dnsRequestAction") or _EMPTY).get("domain")
        if count or (count is not None and _kept(count)):
            attrs["count"] = count
        if action_type or (action_type is not None and _kept(action_type)):
            attrs["action_type"] = action_type
        if api or (api is not None and _kept(api)):
            attrs["api"] = api
        if domain or (domain is not None and _kept(domain)):
            attrs["domain"] = domain
        if ips is not candidates and len(ips) != len(candidates):
            attrs["invalid_ips"] = [ip for ip in candidates if ip not in ips]
        # `str(e) != str(f)` implies `e != f` for a str f (only a str equals a str): `mismatch` only when they differ
        if (f_account and e_account and e_account != f_account) or (f_region and e_region and e_region != f_region):
            different = mismatch(f, env)
            if different:
                attrs["envelope_mismatch"] = different
        account = account or None
        if subject is None:
            subject, subject_id = "finding", finding_id
        when = f.get("updatedAt") or f.get("createdAt") or env.get("time")
        time = None
        if type(when) is str and when[-1:] == "Z":  # `parse_time`'s shortcut for the common `…Z` form, inline
            try:  # noqa: SIM105 - contextlib.suppress costs a context manager per record
                time = _fromisoformat(when)
            except ValueError:
                pass
        if time is None or time.tzinfo is not UTC:
            time = parse_time(when)
        stripped, threat = typed
        out: Event = _new_event({
            "id": finding_id,
            "source": "guardduty",
            "type": stripped,
            "severity": scored(float(severity), severity),  # memoised, keyed by the type too
            "time": time,
            "account": account,
            "region": region or None,
            "cloud": "aws",
            "actor": actor,
            "resources": _new_resources(items),
            "incident_key": f"{account or '-'}:{subject}:{subject_id}",
            "attributes": attrs,
            "threat": threat,
            "raw": envelope or f,
        })
        return out
    except Exception:  # noqa: BLE001 - see above
        return None
