"""OCSF events of any schema version (0.1 to 1.3): findings 2001/2003/2004, IAM 3001/3002, API activity 6003."""

from __future__ import annotations

from typing import Any

import orjson

from responder.models.event import Event, Resource, ResourceKind
from responder.models.threat import Threat
from responder.normalise.assemble import given_id, make_event, raw_id
from responder.normalise.fields import dig, text, time_or_received
from responder.normalise.provider_fields import ocsf_severity, ocsf_types
from responder.normalise.registry import decoder
from responder.normalise.resources import (
    AWS_TYPES,
    CFN_TYPES,
    access_key,
    compact,
    from_arn,
    ip_resource,
    principal,
    res,
)
from responder.normalise.threats import (
    OCSF_TYPES,
    SECURITYHUB,
    asff_threat,
    aws_product,
    first,
    from_techniques,
)

K = ResourceKind
FINDING_CLASSES = {2001, 2002, 2003, 2004, 2005, 2006}
CLASS_NAMES = {2001: "Security Finding", 2002: "Vulnerability Finding", 2003: "Compliance Finding",
               2004: "Detection Finding", 2005: "Incident Finding", 2006: "Data Security Finding",
               3001: "Account Change", 3002: "Authentication", 3003: "Authorize Session",
               6003: "API Activity"}


def _is_ocsf(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("class_uid"), int) and "metadata" in doc


def _access_key(uid: str, r: dict[str, Any]) -> list[Resource | None]:
    """The key of an access key resource and its principal, named as Security Hub's decoder names them (user_type
    from `PrincipalType`, then the IAM role or user), so one runbook serves every source: ASFF's `AwsIamAccessKey`
    details in `data` (Security Lake), else Security Hub's own OCSF (`AWS::IAM::AccessKey`: `data.user_name`,
    `user_type`, `principal_id`, or the resource's `user`)."""
    data = r.get("data")
    if isinstance(data, str):
        try:
            data = orjson.loads(data)
        except orjson.JSONDecodeError:
            data = {}
    details = dig(data, "AwsIamAccessKey")
    if isinstance(details, dict):
        user, principal_type = details.get("PrincipalName") or details.get("UserName"), details.get("PrincipalType")
        principal_id = details.get("PrincipalId")
    else:
        flat = data if isinstance(data, dict) else {}
        user_obj = r.get("user")
        owner: dict[str, Any] = user_obj if isinstance(user_obj, dict) else {}
        user, principal_type = flat.get("user_name") or owner.get("name"), flat.get("user_type") or owner.get("type")
        principal_id = flat.get("principal_id") or owner.get("uid")
    return [access_key(uid.removeprefix("AWS::IAM::AccessKey:"), user, principal_type=principal_type,
                       principal_id=principal_id), principal(principal_type, user, name=user)]


def _typed(r: dict[str, Any]) -> list[Resource | None]:
    uid, rtype = text(r.get("uid")), str(r.get("type") or "")
    if uid is None:
        return [res(K.OTHER, r.get("name"), type=rtype or None)]
    if rtype in ("AwsIamAccessKey", "AWS::IAM::AccessKey") or uid.startswith("AWS::IAM::AccessKey:"):
        return _access_key(uid, r)
    return [_other(r, uid, rtype)]


def _other(r: dict[str, Any], uid: str, rtype: str) -> Resource | None:
    if rtype == "AwsAccount":
        return res(K.ACCOUNT, uid.rsplit(":", 1)[-1])
    kind = AWS_TYPES.get(rtype) or CFN_TYPES.get(rtype)
    if uid.startswith("arn:"):
        typed = from_arn(uid, type=rtype or None)
        if typed is not None and (kind is None or typed.kind is kind or typed.kind is K.ACCOUNT):
            return typed  # an AwsIamUser whose uid is the root ARN is the account (`from_arn`), never an iam_user
    # Security Hub's OCSF: the bare name or id in `uid`, the ARN in `uid_alt` (typed from it when it names a kind)
    alt = from_arn(r.get("uid_alt"), type=rtype or None)
    if alt is not None and alt.kind is not K.OTHER and alt.kind is not K.ACCOUNT and kind in (None, alt.kind):
        return alt
    ip = ip_resource(uid)
    if ip is not None:
        return ip
    return res(kind or K.OTHER, uid, name=r.get("name"), type=rtype or None)


def _identity(user: dict[str, Any] | None, role: str) -> list[Resource | None]:
    if not isinstance(user, dict):
        return []
    uid, name, utype = text(user.get("uid")), text(user.get("name")), user.get("type")
    # the key's principal type is the actor's (Security Lake: CloudTrail's userIdentity.type), as for every source
    out: list[Resource | None] = [access_key(user.get("credential_uid"), name, user_type=utype)]
    if uid and uid.startswith("arn:"):
        out.append(from_arn(uid, role=role))
    elif uid or name:  # an IAM user or role only for type IAMUser / AssumedRole (`resources.PRINCIPAL_KINDS`);
        # anyone else (a FederatedUser names itself, Root, an Okta user…) stays in view as `other`, with its type
        out.append(principal(utype, name or uid, name=name, uid=uid, role=role)
                   or res(K.OTHER, name or uid, name=name, uid=uid, role=role, user_type=text(utype)))
    return out


def finding_type(doc: dict[str, Any], cls: int) -> str:
    info = doc.get("finding_info") or doc.get("finding") or {}
    if cls in FINDING_CLASSES:
        title = text(dig(info, "analytic", "name")) or text(info.get("title"))
        if title:
            return title
    op, service = text(dig(doc, "api", "operation")), text(dig(doc, "api", "service", "name"))
    if op:
        return f"{service}/{op}" if service else op
    activity = doc.get("activity_name") or doc.get("activity_id")
    return text(doc.get("type_name")) or f"{CLASS_NAMES.get(cls, cls)}: {activity}"


def finding_threat(doc: dict[str, Any]) -> Threat | None:
    """GuardDuty's own finding (`metadata.product.uid` is the ASFF ProductArn Security Lake copied) by its finding
    type first (the provider's, `ocsf_types`, before the `finding_info.types` an analyst may rewrite), as the
    native and Security Hub lanes classify it (an ML anomaly naming T1078.004 stays anomalous_credential_use, never
    credential_compromise that a runbook contains); Security Hub's own control finding by its control id, as the
    ASFF lane classifies it; else from the ATT&CK/ATLAS ids in `attacks[]` (1.1+ under finding_info), else the
    finding types."""
    info = doc.get("finding_info") or doc.get("finding") or {}
    attacks = info.get("attacks") or doc.get("attacks") or []
    ids = [dig(a, "technique", "uid") or dig(a, "sub_technique", "uid") for a in attacks if isinstance(a, dict)]
    types = ocsf_types(doc)
    product = dig(doc, "metadata", "product", "uid")
    own = asff_threat(types) if aws_product(product, "guardduty") else None
    if own is not None:
        return own.with_techniques(tuple(x for x in ids if isinstance(x, str)))
    if aws_product(product, "securityhub") and (check_passed(doc) or retired(doc)):
        return None  # a control check that passed or was closed is no threat (ASFF: `PASSED`, `ARCHIVED`)
    control = SECURITYHUB.lookup(control_id(doc)) if aws_product(product, "securityhub") else None
    return first(control, from_techniques(ids), *(OCSF_TYPES.lookup(x) for x in types))


def check_passed(doc: dict[str, Any]) -> bool:
    """Whether the compliance check passed: `compliance.status_id` 1 or `status` Pass (or PASSED, as ASFF and Security
    Lake's copies write it), and neither says otherwise (a Fail, a Warning, a contradiction or no status is not a
    pass; the finding's own `status`, Resolved or Suppressed, is a human's word and never rules a check out)."""
    sid, label = dig(doc, "compliance", "status_id"), text(dig(doc, "compliance", "status"))
    id_pass = sid is None or (type(sid) is int and sid == 1)
    label_pass = label is None or label.casefold() in ("pass", "passed")  # Security Lake's copies say PASSED
    return (sid is not None or label is not None) and id_pass and label_pass


def retired(doc: dict[str, Any]) -> bool:
    """Whether the finding's provider closed it: `activity_id` 3 or `activity_name` Close, and neither says otherwise
    (Security Hub's V2 findings; BatchUpdateFindingsV2 sets only `status_id`, severity and comment, a human's word),
    or, in Security Lake's copy of an ASFF finding, `unmapped.RecordState` ARCHIVED."""
    aid, name = doc.get("activity_id"), text(doc.get("activity_name"))
    id_close = aid is None or (type(aid) is int and aid == 3)
    name_close = name is None or name.casefold() == "close"
    closed = (aid is not None or name is not None) and id_close and name_close
    return closed or dig(doc, "unmapped", "RecordState") == "ARCHIVED"


def control_id(doc: dict[str, Any]) -> str | None:
    """The Security Hub control id of a Compliance Finding (`compliance.control`: `S3.8`, as ASFF's
    `Compliance.SecurityControlId`)."""
    return text(dig(doc, "compliance", "control"))


def event_of(doc: dict[str, Any], envelope: dict[str, Any] | None = None) -> Event:
    """One OCSF event; `envelope` is the EventBridge event that relayed it (Security Hub's `Findings Imported V2`),
    whose account, region and time serve only where the finding names none."""
    env = envelope or {}
    cls = int(doc["class_uid"])
    info = doc.get("finding_info") or doc.get("finding") or {}
    cloud = doc.get("cloud") or {}
    # the account the call was made in (AWS's CloudTrail mapping keeps `recipientAccountId` unmapped) before the
    # caller's, which is another for a call across accounts
    account = dig(cloud, "account", "uid") or cloud.get("account_uid") or dig(doc, "unmapped", "recipientAccountId") \
        or dig(doc, "actor", "user", "account", "uid") or env.get("account")
    items: list[Resource | None] = []
    items.extend(_identity(dig(doc, "actor", "user"), "actor"))
    items.extend(_identity(doc.get("user"), "target"))
    for r in doc.get("resources") or []:
        if isinstance(r, dict):
            items.extend(_typed(r))
    if isinstance(doc.get("resource"), dict):
        items.extend(_typed(doc["resource"]))
    src_ip = dig(doc, "src_endpoint", "ip")
    items.append(ip_resource(src_ip, role="source"))
    when, inferred = time_or_received(doc.get("time"), doc.get("time_dt"), info.get("created_time"),
                                      env.get("time"))
    product = dig(doc, "metadata", "product") or {}
    uid = given_id(text(info.get("uid")), text(dig(doc, "metadata", "uid")))
    return make_event(
        id=uid or raw_id("ocsf", doc),
        source="ocsf",
        type=finding_type(doc, cls),
        severity=ocsf_severity(doc),
        time=when,
        time_inferred=inferred,
        account=account,
        region=cloud.get("region") or env.get("region"),
        cloud=str(cloud["provider"]).lower() if cloud.get("provider") else None,
        actor=dig(doc, "actor", "user", "uid") or dig(doc, "actor", "user", "name"),
        resources=compact(items),
        attributes={
            "class_uid": cls,
            "class_name": doc.get("class_name") or CLASS_NAMES.get(cls),
            "activity_id": doc.get("activity_id"),
            "type_uid": doc.get("type_uid"),
            "schema_version": dig(doc, "metadata", "version"),
            "product": product.get("name"),
            "vendor": product.get("vendor_name"),
            "title": text(info.get("title")),
            "finding_types": info.get("types"),
            "control_id": control_id(doc),
            "status": doc.get("status") or doc.get("status_id"),
            "retired": True if cls in FINDING_CLASSES and retired(doc) else None,
            "source_ip": text(src_ip) if src_ip and ip_resource(src_ip) is None else None,
            "is_mfa": doc.get("is_mfa", dig(doc, "actor", "session", "is_mfa")),
            # Security Lake's copy of CloudTrail's userIdentity.type and invokedBy, under CloudTrail's names; never a
            # finding's (its actor is its product's claim: a runbook ruling a write out by them must not drop one)
            "identity_type": None if cls in FINDING_CLASSES else dig(doc, "actor", "user", "type"),
            "invoked_by": None if cls in FINDING_CLASSES else dig(doc, "actor", "invoked_by"),
            "detail_type": env.get("detail-type"),
            "envelope_id": env.get("id"),
        },
        raw=doc,
        threat=finding_threat(doc) if cls in FINDING_CLASSES else None,
    )


# every `event.attributes` key this decoder can set (`responder runbooks validate` warns on others)
OCSF_ATTRIBUTES = (
    "class_uid", "class_name", "activity_id", "type_uid", "schema_version", "product", "vendor", "title",
    "finding_types", "control_id", "status", "retired", "source_ip", "is_mfa", "identity_type", "invoked_by",
)


@decoder("ocsf", _is_ocsf, attributes=OCSF_ATTRIBUTES)
def decode(doc: Any) -> list[Event]:
    """An OCSF event object (arrays of them are split by the caller)."""
    return [event_of(doc)]
