"""CloudTrail records: a single record, a `Records` file, a JSON array, or the EventBridge envelope.

CloudTrail has no severity; responder assigns one from a small table of sensitive calls (docs/events.md,
"Events and formats"). Resources list the acting credential first (so a burst from one key is one
incident), then the things the call touched.
"""

from __future__ import annotations

from typing import Any

from responder.models.event import Event, Resource, ResourceKind, Severity
from responder.normalise.assemble import each_part, given_id, make_event, raw_id
from responder.normalise.fields import dig, parse_time, text, valid_ip
from responder.normalise.registry import decoder
from responder.normalise.resources import access_key, compact, from_arn, ip_resource, res
from responder.normalise.threats import CLOUDTRAIL

K = ResourceKind
HIGH = 7.5
MEDIUM = 5.0
LOW = 2.0
# eventName → score; everything else is informational unless the rules below raise it
SENSITIVE: dict[str, float] = {
    "StopLogging": HIGH, "DeleteTrail": HIGH, "UpdateTrail": MEDIUM, "PutEventSelectors": MEDIUM,
    "LeaveOrganization": HIGH, "DeleteDetector": HIGH, "DisableSecurityHub": HIGH,
    "CreateAccessKey": MEDIUM, "CreateUser": MEDIUM, "CreateLoginProfile": MEDIUM, "UpdateLoginProfile": MEDIUM,
    "AttachUserPolicy": MEDIUM, "AttachRolePolicy": MEDIUM, "PutUserPolicy": MEDIUM, "PutRolePolicy": MEDIUM,
    "GetFederationToken": MEDIUM, "GetSecretValue": LOW, "BatchGetSecretValue": MEDIUM,
    "ScheduleKeyDeletion": HIGH, "DisableKey": HIGH, "PutBucketPolicy": MEDIUM, "DeleteBucketPolicy": MEDIUM,
    "ConsoleLogin": LOW, "SendCommand": LOW, "AssumeRole": 0.0,
}
ENVELOPE_TYPES = (
    "AWS API Call via CloudTrail", "AWS Console Sign In via CloudTrail", "AWS Service Event via CloudTrail",
)


def _is_record(doc: Any) -> bool:
    return isinstance(doc, dict) and "eventSource" in doc and "eventName" in doc and "eventTime" in doc


def _is_records_file(doc: Any) -> bool:
    recs = doc.get("Records") if isinstance(doc, dict) else None
    return isinstance(recs, list) and bool(recs) and _is_record(recs[0])


def _is_envelope(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("detail-type") in ENVELOPE_TYPES and _is_record(doc.get("detail"))


def _severity(r: dict[str, Any]) -> Severity:
    name = str(r.get("eventName"))
    score = SENSITIVE.get(name, 0.0)
    ident = r.get("userIdentity") or {}
    params = r.get("requestParameters") or {}
    if name == "ConsoleLogin":
        failed = dig(r, "responseElements", "ConsoleLogin") == "Failure"
        no_mfa = dig(r, "additionalEventData", "MFAUsed") == "No"
        if ident.get("type") == "Root":
            score = HIGH if not failed else MEDIUM
        elif failed or no_mfa:
            score = MEDIUM
    if str(params.get("policyArn", "")).endswith("/AdministratorAccess"):
        score = HIGH
    if r.get("errorCode") and score < MEDIUM and r.get("errorCode") in ("AccessDenied", "UnauthorizedOperation"):
        score = max(score, LOW)
    return Severity.of(score, original=None)


def _actor(ident: dict[str, Any]) -> list[Resource | None]:
    itype = ident.get("type")
    issuer = dig(ident, "sessionContext", "sessionIssuer") or {}
    user = ident.get("userName") or issuer.get("userName")
    out: list[Resource | None] = [access_key(ident.get("accessKeyId"), user if itype == "IAMUser" else None,
                                             principal_type=itype, arn=ident.get("arn"))]
    if itype == "Root":  # the account itself, never an iam_user: IAM allows a real user named `root`
        named = from_arn(ident.get("arn"))
        out.append(res(K.ACCOUNT, ident.get("accountId"), arn=ident.get("arn"), root_identity=True)
                   or (named if named is not None and named.kind is K.ACCOUNT else None))
    elif itype == "IAMUser":
        out.append(res(K.IAM_USER, user, name=user, arn=ident.get("arn")))
    elif itype == "AssumedRole" and issuer.get("arn"):
        role = from_arn(issuer["arn"])
        if role is not None:
            out.append(role)
            instance = str(ident.get("principalId", "")).rpartition(":")[2]
            if instance.startswith("i-"):
                out.append(res(K.INSTANCE, instance, role="credential_source"))
    return out


def _targets(r: dict[str, Any]) -> list[Resource | None]:
    p = r.get("requestParameters") or {}
    resp = r.get("responseElements") or {}
    out: list[Resource | None] = []
    new_key = resp.get("accessKey") if isinstance(resp, dict) else None
    if isinstance(new_key, dict):
        out.append(access_key(new_key.get("accessKeyId"), new_key.get("userName"), created=True))
    creds = resp.get("credentials") if isinstance(resp, dict) else None
    if isinstance(creds, dict):
        out.append(access_key(creds.get("accessKeyId"), None, created=True, temporary=True))
    if isinstance(p, dict):
        out.append(res(K.IAM_USER, p.get("userName"), name=p.get("userName"), role="target"))
        if p.get("roleArn"):
            out.append(from_arn(p["roleArn"], role="target"))
        out.append(res(K.IAM_ROLE, p.get("roleName"), name=p.get("roleName"), role="target"))
        secret = p.get("secretId")
        out.append((from_arn(secret) if str(secret).startswith("arn:") else res(K.SECRET, secret)) if secret
                   else None)
        for sid in p.get("secretIdList") or []:
            out.append(from_arn(sid) if str(sid).startswith("arn:") else res(K.SECRET, sid))
        out.append(res(K.BUCKET, p.get("bucketName")))
        out.append(res(K.KMS_KEY, p.get("keyId")))
        out.append(res(K.FUNCTION, p.get("functionName")))
        out.append(res(K.ENDPOINT, p.get("endpointName")))
        out.append(res(K.MODEL, p.get("modelName")))
        if r.get("eventSource") == "cloudtrail.amazonaws.com":
            out.append(res(K.TRAIL, p.get("name") or p.get("trailName")))
        for iid in p.get("instanceIds") or ([p["instanceId"]] if p.get("instanceId") else []):
            out.append(res(K.INSTANCE, iid))
    return out


def record_to_event(r: dict[str, Any], envelope: dict[str, Any] | None = None) -> Event:
    """One CloudTrail record as an Event."""
    env = envelope or {}
    ident = r.get("userIdentity") or {}
    source_ip = r.get("sourceIPAddress")
    items = [*_actor(ident), *_targets(r), ip_resource(source_ip, role="source")]
    etype = f"{r['eventSource']}/{r['eventName']}"
    return make_event(
        # the record's hash when it has no id: source/name@time is shared by two calls in the same second
        id=given_id(r.get("eventID"), env.get("id")) or raw_id("cloudtrail", r),
        source="cloudtrail",
        type=etype,
        severity=_severity(r),
        time=parse_time(r.get("eventTime") or env.get("time")),
        account=r.get("recipientAccountId") or ident.get("accountId") or env.get("account"),
        region=r.get("awsRegion") or env.get("region"),
        cloud="aws",
        actor=ident.get("arn") or ident.get("principalId"),
        resources=compact(items),
        attributes={
            "event_name": r.get("eventName"),
            "event_source": r.get("eventSource"),
            "event_type": r.get("eventType"),
            "read_only": r.get("readOnly"),
            "identity_type": ident.get("type"),
            "invoked_by": ident.get("invokedBy"),
            "error_code": r.get("errorCode"),
            "error_message": r.get("errorMessage"),
            "source_ip": text(source_ip),
            "source_ip_valid": valid_ip(source_ip) is not None if source_ip else None,
            "user_agent": r.get("userAgent"),
            "mfa_used": dig(r, "additionalEventData", "MFAUsed"),
            "login_result": dig(r, "responseElements", "ConsoleLogin"),
            "policy_arn": dig(r, "requestParameters", "policyArn"),
            "target_user": dig(r, "requestParameters", "userName"),
            "new_access_key_id": dig(r, "responseElements", "accessKey", "accessKeyId"),
            "model_id": dig(r, "requestParameters", "modelId"),
            "object_key": dig(r, "requestParameters", "key"),
        },
        raw=r,
        threat=CLOUDTRAIL.lookup(etype, r),
    )


# every `event.attributes` key this decoder can set (`responder runbooks validate` warns on others)
CLOUDTRAIL_ATTRIBUTES = (
    "event_name", "event_source", "event_type", "read_only", "identity_type", "invoked_by", "error_code",
    "error_message", "source_ip", "source_ip_valid", "user_agent", "mfa_used", "login_result", "policy_arn",
    "target_user", "new_access_key_id", "model_id", "object_key",
)


@decoder("cloudtrail.eventbridge", _is_envelope, attributes=CLOUDTRAIL_ATTRIBUTES)
def decode_envelope(doc: Any) -> list[Event]:
    """'AWS API Call via CloudTrail' / 'AWS Console Sign In via CloudTrail': the record is `detail`."""
    return [record_to_event(doc["detail"], doc)]


@decoder("cloudtrail.records", _is_records_file, attributes=CLOUDTRAIL_ATTRIBUTES)
def decode_records(doc: Any) -> list[Event]:
    """A CloudTrail log file: `{"Records": [...]}`, each record decoded on its own (`each_part`)."""
    return each_part("cloudtrail record", doc["Records"], lambda r: [record_to_event(r)])


@decoder("cloudtrail", _is_record, attributes=CLOUDTRAIL_ATTRIBUTES)
def decode_record(doc: Any) -> list[Event]:
    """One CloudTrail record (arrays of records are split by the caller)."""
    return [record_to_event(doc)]
