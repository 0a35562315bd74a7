"""SIEM incidents and detections: Microsoft Sentinel incidents and alerts, Google SecOps (Chronicle) rule detections.

Both are read as the SIEM's API or automation hands them over: a Sentinel incident (or the alerts of one) in the
REST example wrapper or a Logic App trigger's `object`, a Chronicle detection with one event per `detection[]`
entry. Datadog signals and GCP SCC findings are in responder.normalise.siem_datadog_scc; responder.normalise.siem
imports both modules, Sentinel and SecOps first, so the decoders register in the order they always had.
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from typing import Any

import orjson

from responder.models.event import Event, Resource, ResourceKind, stable_id
from responder.normalise.assemble import DERIVED, each_part, given_id, make_event, raw_id
from responder.normalise.fields import dig, number, severity_from_label, text, time_or_received
from responder.normalise.registry import decoder
from responder.normalise.resources import access_key, compact, ip_resource, res
from responder.normalise.threats import SENTINEL, first, from_techniques

K = ResourceKind
_AWS_ACCOUNT = re.compile(r"[0-9]{12}")  # ASCII: `\d` takes Arabic-Indic and full-width digits too
SENTINEL_TYPES = ("Microsoft.SecurityInsights/incidents", "Microsoft.SecurityInsights/Incidents")
SENTINEL_PRODUCTS = ("Azure Sentinel", "Microsoft Sentinel")  # an alert of Sentinel's own analytics rules


# ---- Microsoft Sentinel -------------------------------------------------------------------------
def _sentinel_body(doc: Any) -> Any:
    """The incident (or alert list) inside the REST example wrapper or a Logic App trigger's `object`."""
    if isinstance(doc, dict):
        if isinstance(dig(doc, "responses", "200", "body"), dict):
            return doc["responses"]["200"]["body"]
        if isinstance(doc.get("object"), dict) and "properties" in doc["object"]:
            return doc["object"]
    return doc


def _is_sentinel(doc: Any) -> bool:
    body = _sentinel_body(doc)
    if not isinstance(body, dict):
        return False
    if body.get("type") in SENTINEL_TYPES or "incidentNumber" in (body.get("properties") or {}):
        return True
    items = body.get("value")
    return isinstance(items, list) and bool(items) and dig(items[0], "kind") == "SecurityAlert"


def _sentinel_event(item: dict[str, Any], subscription: Any) -> Event:
    p = item.get("properties") or {}
    alert = item.get("kind") == "SecurityAlert"
    title = p.get("alertType") or p.get("alertDisplayName") if alert else p.get("title")
    when, inferred = time_or_received(p.get("timeGenerated") if alert else p.get("createdTimeUtc"),
                                      p.get("firstActivityTimeUtc"), p.get("startTimeUtc"))
    entities = [e for e in [*(p.get("relatedEntities") or []), *(p.get("entities") or [])] if isinstance(e, dict)]
    hosts = [res(K.HOST, _prop(e, "hostName")) for e in entities]
    ips = [ip_resource(_prop(e, "address")) for e in entities if str(e.get("kind", "")).lower() == "ip"]
    user = next((_prop(e, "accountName") for e in entities if str(e.get("kind", "")).lower() == "account"), None)
    kind = _custom(p, "identitytype")
    aws_account = _aws_account(p)
    caller = _caller_arn(p, user, kind, aws_account)
    # the record's hash when it names no text id (never "None"): also its incident's subject when it names no resource
    ident = given_id(text(item.get("name")), text(p.get("systemAlertId"))) or raw_id("sentinel", item)
    return make_event(
        id=ident,
        source="sentinel",
        type=str(title or "incident"),
        severity=severity_from_label(p.get("severity"), default=5.0),
        time=when,
        time_inferred=inferred,
        account=aws_account,  # never the Azure subscription: `${event.account}` is an AWS account in every runbook
        cloud="aws" if aws_account else "azure",
        actor=user or dig(p, "owner", "userPrincipalName"),
        resources=compact([access_key(_custom(p, "accesskeyid"), user, user_type=kind, arn=caller),
                           _iam_user(user, kind, caller), *hosts, *ips]),
        attributes={
            "kind": "alert" if alert else "incident",
            "azure_subscription": text(subscription),
            "title": p.get("title") or p.get("alertDisplayName"),
            "status": p.get("status"),
            "classification": p.get("classification"),
            "incident_number": p.get("incidentNumber"),
            "tactics": dig(p, "additionalData", "tactics") or p.get("tactics"),
            "analytic_rule_ids": p.get("relatedAnalyticRuleIds"),
            "product": p.get("productName") or p.get("providerName"),
            "url": p.get("incidentUrl"),
        },
        raw=item,
        subject=f"sentinel:{ident}",
        threat=first(from_techniques(p.get("techniques") or []), SENTINEL.lookup(title),
                     SENTINEL.lookup(_rule_name(p)) if alert else None),
    )


def _rule_name(p: dict[str, Any]) -> Any:
    """A Sentinel analytics rule's alert's rule name (`additionalData["Analytic Rule Name"]`), else None: a scheduled
    rule's `alertType` is the rule's id, and its `alertDisplayName` may be built from query columns (alert details
    override), logged text an attacker can write; other products' alerts carry no rule name."""
    return dig(p, "additionalData", "Analytic Rule Name") if p.get("productName") in SENTINEL_PRODUCTS else None


# AWSCloudTrail columns an AWS analytics rule surfaces as custom details, in order: the account whose trail logged
# the call (GuardDuty's and Security Hub's finding account), an ASFF-style name, the caller's account
_ACCOUNT_DETAILS = ("recipientaccountid", "awsaccountid", "useridentityaccountid")


def _aws_account(p: dict[str, Any]) -> str | None:
    """The AWS account the alert is about, from a custom detail, when it is 12 digits; else None."""
    for suffix in _ACCOUNT_DETAILS:
        value = text(_custom(p, suffix))
        if value is not None and _AWS_ACCOUNT.fullmatch(value):
            return value
    return None


def _caller_arn(p: dict[str, Any], user: Any, user_type: Any, event_account: str | None) -> str | None:
    """The caller's ARN, which its access key and IAM user carry so the account guard sees the caller's account
    (a caller from another account into ours is not our namesake): a custom detail ending in `UserIdentityArn` when
    it agrees with the caller's 12-digit `UserIdentityAccountId` (and, for an IAMUser, ends in its name); else an
    IAMUser's ARN built from the caller's account (partition `aws`, no path), or another caller's given ARN moved
    into it. Two that disagree (never in CloudTrail) place it in the one not the event's: the guard refuses."""
    stated = text(_custom(p, "useridentityaccountid"))
    account = stated if stated is not None and _AWS_ACCOUNT.fullmatch(stated) else None
    name = text(user) if user_type == "IAMUser" else None
    given = text(_custom(p, "useridentityarn"))
    parts = given.split(":", 5) if given is not None and given.startswith("arn:") else []
    if len(parts) == 6:
        named = parts[4] if _AWS_ACCOUNT.fullmatch(parts[4]) else None
        if account is not None and named is not None and named != account and account == event_account:
            account = named  # the two disagree: the one that is not the event's
        account = account or named
        if parts[4] == account and (name is None or parts[5].rsplit("/", 1)[-1] == name):
            return given
        if name is None and account is not None:
            return ":".join([*parts[:4], account, parts[5]])
    return f"arn:aws:iam::{account}:user/{name}" if name and account is not None else None


def _prop(entity: dict[str, Any], name: str) -> Any:
    return entity.get(name) or dig(entity, "properties", name)


def _iam_user(user: Any, user_type: Any, arn: str | None) -> Resource | None:
    """The Account entity as an IAM user only when the rule typed it IAMUser (`UserIdentityType`): an untyped
    account may be an Azure user, a federated session name or the root, and a runbook acting on iam_user would
    act on a real IAM user so named."""
    return res(K.IAM_USER, user, name=user, arn=arn) if user_type == "IAMUser" else None


def _custom(p: dict[str, Any], suffix: str) -> Any:
    """The first custom detail whose name ends with `suffix` (lower case): Sentinel has no access-key entity and its
    Account entity no principal type, so AWS rules surface `AccessKeyId: UserIdentityAccessKeyId` and
    `UserIdentityType: UserIdentityType` (AWSCloudTrail columns) in `additionalData["Custom Details"]` (a JSON
    text of name → values in the alert's ExtendedProperties, or a mapping)."""
    for props in [p, *(dig(a, "properties") or {} for a in p.get("Alerts") or [] if isinstance(a, dict))]:
        details = dig(props, "additionalData", "Custom Details") or props.get("customDetails")
        if isinstance(details, str):
            with contextlib.suppress(ValueError):
                details = orjson.loads(details)
        for name, value in details.items() if isinstance(details, dict) else ():
            if str(name).lower().endswith(suffix):
                return value[0] if isinstance(value, list) and value else value
    return None


# every `event.attributes` key this decoder can set (`responder runbooks validate` warns on others)
SENTINEL_ATTRIBUTES = ("kind", "azure_subscription", "title", "status", "classification", "incident_number", "tactics",
                       "analytic_rule_ids", "product", "url")


@decoder("sentinel", _is_sentinel, attributes=SENTINEL_ATTRIBUTES)
def decode_sentinel(doc: Any) -> list[Event]:
    """A Sentinel incident, or the alerts of one (`value[]` of kind SecurityAlert)."""
    body = _sentinel_body(doc)
    subscription = dig(doc, "parameters", "subscriptionId") or dig(doc, "workspaceInfo", "SubscriptionId")
    items = body["value"] if isinstance(body.get("value"), list) else [body]
    if subscription is None:
        parts = str(items[0].get("id", "")).split("/")
        subscription = parts[2] if len(parts) > 2 and parts[1] == "subscriptions" else None
    return [_sentinel_event(item, subscription) for item in items]


# ---- Google SecOps / Chronicle -------------------------------------------------------------------
def _is_secops(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("type") in ("RULE_DETECTION", "GCTI_FINDING") \
        and isinstance(doc.get("detection"), list)


def _udm_resources(doc: dict[str, Any]) -> list[Resource | None]:
    out: list[Resource | None] = []
    for element in doc.get("collectionElements") or []:
        for ref in element.get("references") or []:
            for side in ("principal", "target"):
                entity = dig(ref, "event", side) or {}
                out.append(res(K.HOST, entity.get("hostname"), role=side))
                out.extend(ip_resource(ip, role=side) for ip in entity.get("ip") or [])
    return out


# every `event.attributes` key this decoder can set (`responder runbooks validate` warns on others)
SECOPS_ATTRIBUTES = ("rule_id", "rule_version", "alert_state", "risk_score", "detection_fields", "url",
                     "detection_type")


def _rule_suffix(det: dict[str, Any], shared: Counter[str]) -> str:
    """`:<ruleId>`, and for a rule with more than one detection in the record `#` and a hash of this detection (the
    same on every delivery; equal only for identical detections, which are one)."""
    rule = str(det["ruleId"])
    if shared[rule] == 1:
        return f":{rule}"
    return f":{rule}#{stable_id('google-secops', orjson.dumps(det, option=orjson.OPT_SORT_KEYS).decode())[:16]}"


@decoder("google-secops", _is_secops, attributes=SECOPS_ATTRIBUTES)
def decode_secops(doc: Any) -> list[Event]:
    """A Chronicle rule detection: one event per `detection[]` entry, each decoded on its own (`each_part`)."""
    detections = doc["detection"]
    # a lone detection needs no rule id (its event's id is the record's), as before 2026-12-05
    shared = Counter(str(det["ruleId"]) for det in detections if isinstance(det, dict) and "ruleId" in det) \
        if len(detections) > 1 else Counter[str]()
    return each_part("google-secops detection", detections,
                     lambda det: [_detection_event(det, doc, _rule_suffix(det, shared) if len(detections) > 1 else "")])


def _detection_event(det: dict[str, Any], doc: dict[str, Any], rule: str) -> Event:
    """One detection of the record; `rule` is its id's suffix (`_rule_suffix`, "" for a lone detection)."""
    labels = {lab.get("key"): lab.get("value") for lab in det.get("ruleLabels") or []}
    risk = number(det.get("riskScore"))
    when, inferred = time_or_received(doc.get("detectionTime"), doc.get("createdTime"))
    own = given_id(doc.get("id"))
    if own is None or (own + rule).startswith(DERIVED):  # `digest` + `:<hash>` must not spell a real digest id
        own = raw_id("google-secops", doc)
    return make_event(
        id=own + rule,
        source="google-secops",
        type=str(det.get("ruleName") or det.get("ruleId") or doc["type"]),
        severity=severity_from_label(labels.get("severity"), hint=risk / 10 if risk is not None else None,
                                     default=5.0),
        time=when,
        time_inferred=inferred,
        resources=compact(_udm_resources(doc)),
        attributes={
            "rule_id": det.get("ruleId"), "rule_version": det.get("ruleVersion"),
            "alert_state": det.get("alertState"), "risk_score": det.get("riskScore"),
            "detection_fields": {f.get("key"): f.get("value") for f in det.get("detectionFields") or []},
            "url": det.get("urlBackToProduct"), "detection_type": doc["type"],
        },
        raw=doc,
        subject=f"rule:{det.get('ruleId')}",
    )
