"""Security Hub ASFF findings: bare, a `Findings` list, and the EventBridge Imported / Custom Action envelopes."""

from __future__ import annotations

from typing import Any

from responder.models.event import Event, Resource, ResourceKind
from responder.normalise.assemble import each_part, given_id, make_event, raw_id
from responder.normalise.fields import dig, parse_time, text
from responder.normalise.provider_fields import asff_severity, provider_types
from responder.normalise.registry import decoder
from responder.normalise.resources import AWS_TYPES, access_key, compact, from_arn, ip_resource, principal, res
from responder.normalise.threats import SECURITYHUB, asff_threat, aws_product, first

K = ResourceKind
ACCESS_KEY_PREFIX = "AWS::IAM::AccessKey:"


def _is_asff(doc: Any) -> bool:
    return isinstance(doc, dict) and "ProductArn" in doc and "AwsAccountId" in doc and "Severity" in doc


def _is_envelope(doc: Any) -> bool:
    """Security Hub CSPM's ASFF events (`Findings Imported V2`, OCSF, is `securityhub_v2`'s)."""
    return isinstance(doc, dict) and doc.get("source") == "aws.securityhub" and isinstance(
        dig(doc, "detail", "findings"), list) and doc.get("detail-type") != "Findings Imported V2"


def _is_list(doc: Any) -> bool:
    found = doc.get("Findings") if isinstance(doc, dict) else None
    return isinstance(found, list) and bool(found) and _is_asff(found[0])


def _resource(r: dict[str, Any]) -> list[Resource | None]:
    rtype, rid = r.get("Type"), text(r.get("Id"))
    details = r.get("Details") or {}
    if rid is None:
        return []
    if rtype == "AwsIamAccessKey":
        d = details.get("AwsIamAccessKey") or {}
        key = rid.removeprefix(ACCESS_KEY_PREFIX)
        user = d.get("UserName") or d.get("PrincipalName")
        # the IAM user or role only for PrincipalType IAMUser / AssumedRole (`resources.PRINCIPAL_KINDS`)
        return [access_key(key, user, principal_type=d.get("PrincipalType"), principal_id=d.get("PrincipalId")),
                principal(d.get("PrincipalType"), user, name=user)]
    if rtype in ("AwsIamUser", "AwsIamRole"):
        typed = from_arn(rid)
        if typed is not None and typed.kind is K.ACCOUNT:  # the root ARN is the account, whatever Details name it
            return [typed]
        name = dig(details, rtype, "UserName" if rtype == "AwsIamUser" else "RoleName")
        return [res(AWS_TYPES[rtype], name, name=name, arn=rid) if name else typed]
    if rtype == "AwsEc2Instance":
        out: list[Resource | None] = [res(K.INSTANCE, rid.rsplit("/", 1)[-1], arn=rid if rid.startswith("arn:")
                                          else None, instance_type=dig(details, "AwsEc2Instance", "Type"))]
        ips = dig(details, "AwsEc2Instance", "IpV4Addresses") or []
        out.extend(ip_resource(ip, role="instance") for ip in ips)
        return out
    if rtype == "AwsAccount":
        return [res(K.ACCOUNT, rid.rsplit(":", 1)[-1])]
    kind = AWS_TYPES.get(str(rtype))
    if kind is not None and rid.startswith("arn:"):
        typed = from_arn(rid)
        if typed is not None and typed.kind is kind:
            return [typed]
    return [res(kind or K.OTHER, rid, arn=rid if rid.startswith("arn:") else None, type=rtype)]


def _type(f: dict[str, Any], types: list[str]) -> str:
    """`Types[0]`, else the title, else the generator ("" when none: `make_event` says `unknown`)."""
    return text(types[0] if types else None) or text(f.get("Title")) or text(f.get("GeneratorId")) or ""


def finding_to_event(f: dict[str, Any], envelope: dict[str, Any] | None = None) -> Event:
    """One ASFF finding; keyed on its own Id and account, never on the envelope's `resources`."""
    env = envelope or {}
    # the provider's Types type and classify the finding: an analyst's BatchUpdateFindings rewrites only the top-level
    types = provider_types(dig(f, "FindingProviderFields", "Types"), f.get("Types"))
    # GuardDuty types and Security Hub controls classify only AWS's own findings: any principal allowed
    # securityhub:BatchImportFindings can import one under its own product with whatever Types it likes
    arn = f.get("ProductArn")
    guardduty, securityhub = aws_product(arn, "guardduty"), aws_product(arn, "securityhub")
    product = f.get("ProductName") or dig(f, "ProductFields", "aws/securityhub/ProductName")
    resources = compact(item for r in (f.get("Resources") or []) for item in _resource(r))
    control = dig(f, "Compliance", "SecurityControlId") or dig(f, "ProductFields", "ControlId")
    # a control check that passed, or that Security Hub archived (the resource deleted, the control disabled), is no
    # threat: only the provider writes Compliance.Status and RecordState; Workflow.Status is anyone's allowed
    # securityhub:BatchUpdateFindings and never rules a still-FAILED check out
    passed = dig(f, "Compliance", "Status") == "PASSED"
    retired = f.get("RecordState") == "ARCHIVED"
    env_resources = env.get("resources") or []
    ident = given_id(f.get("Id")) or raw_id("securityhub", f)  # the finding's hash when it has no usable Id
    return make_event(
        id=ident,
        source="securityhub",
        type=_type(f, types),
        severity=asff_severity(f, guardduty),
        time=parse_time(f.get("UpdatedAt") or f.get("CreatedAt") or env.get("time")),
        account=f.get("AwsAccountId") or env.get("account"),
        region=f.get("Region") or env.get("region") or dig(f, "Resources", default=[{}])[0].get("Region"),
        cloud="aws",
        actor=dig(f, "ProductFields", "aws/guardduty/service/action/awsApiCallAction/remoteIpDetails/ipAddressV4"),
        resources=resources,
        attributes={
            "title": f.get("Title"),
            "types": types,
            "generator_id": f.get("GeneratorId"),
            "product_arn": f.get("ProductArn"),
            "product_name": product,
            "control_id": control,
            "compliance_status": dig(f, "Compliance", "Status"),
            "workflow_status": dig(f, "Workflow", "Status"),
            "record_state": f.get("RecordState"),
            "retired": True if retired else None,
            "detail_type": env.get("detail-type"),
            "action_name": dig(env, "detail", "actionName"),
            "envelope_resources": env_resources,
            "envelope_mismatch": bool(env_resources) and env.get("detail-type", "").endswith("Imported")
            and not any(ident in str(r) for r in env_resources),
        },
        raw=f,
        subject=f"finding:{ident}",
        threat=first(asff_threat(types) if guardduty else None,
                     SECURITYHUB.lookup(control) if securityhub and not passed and not retired else None),
    )


# every `event.attributes` key this decoder can set (`responder runbooks validate` warns on others)
SECURITYHUB_ATTRIBUTES = (
    "title", "types", "generator_id", "product_arn", "product_name", "control_id", "compliance_status",
    "workflow_status", "record_state", "retired", "detail_type", "action_name", "envelope_resources",
    "envelope_mismatch",
)


@decoder("securityhub.eventbridge", _is_envelope, attributes=SECURITYHUB_ATTRIBUTES)
def decode_envelope(doc: Any) -> list[Event]:
    """'Security Hub Findings - Imported' or '- Custom Action': one event per finding."""
    return each_part("securityhub finding", doc["detail"]["findings"], lambda f: [finding_to_event(f, doc)])


@decoder("securityhub.findings", _is_list, attributes=SECURITYHUB_ATTRIBUTES)
def decode_list(doc: Any) -> list[Event]:
    """A GetFindings / BatchImportFindings body: `{"Findings": [ASFF, ...]}`."""
    return each_part("securityhub finding", doc["Findings"], lambda f: [finding_to_event(f)])


@decoder("securityhub", _is_asff, attributes=SECURITYHUB_ATTRIBUTES)
def decode_finding(doc: Any) -> list[Event]:
    """A bare ASFF finding."""
    return [finding_to_event(doc)]
