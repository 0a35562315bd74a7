"""SIEM signals on a cloud bus: Datadog security signals via EventBridge, GCP Security Command Center findings.

A Datadog signal ('Datadog Alert Notification') takes its resources from the rule's `group_by_fields` and its
techniques from `technique:` tags; an SCC finding notification (Pub/Sub body) from its resource name and
`mitreAttack`. Sentinel and Google SecOps are in responder.normalise.siem_sentinel_secops, registered before these
(responder.normalise.siem imports both in order).
"""

from __future__ import annotations

from typing import Any

from responder.models.event import Event, Resource, ResourceKind
from responder.normalise.assemble import given_id, make_event, raw_id
from responder.normalise.fields import dig, severity_from_label, text, time_or_received
from responder.normalise.registry import decoder
from responder.normalise.resources import access_key, compact, from_arn, ip_resource, res
from responder.normalise.threats import DATADOG, first, from_techniques

K = ResourceKind


# ---- Datadog security signal via EventBridge ------------------------------------------------------
def _is_datadog(doc: Any) -> bool:
    return isinstance(doc, dict) and (str(doc.get("source", "")).startswith("aws.partner/datadog.com")
                                      or doc.get("detail-type") == "Datadog Alert Notification") \
        and isinstance(dig(doc, "detail", "meta", "signal"), dict)


def _group_by(fields: dict[str, Any]) -> list[Resource | None]:
    out: list[Resource | None] = []
    for key, value in fields.items():
        name = key.lstrip("@")
        if name.endswith(".arn") or str(value).startswith("arn:"):
            out.append(from_arn(value))
        elif name.endswith("accessKeyId"):
            out.append(access_key(value))
        elif name in ("bucket_name", "requestParameters.bucketName"):
            out.append(res(K.BUCKET, value))
        elif name in ("host", "hostname"):
            out.append(res(K.HOST, value))
        elif name in ("network.client.ip", "sourceIPAddress"):
            out.append(ip_resource(value))
    return out


def _dd_technique(tag: str) -> str:
    """`technique:t1089-disabling-security-tools` → `T1089` (other tags → "")."""
    name, _, value = tag.partition(":")
    return value.partition("-")[0].upper() if name == "technique" else ""


# every `event.attributes` key this decoder can set (`responder runbooks validate` warns on others)
DATADOG_ATTRIBUTES = ("title", "rule_id", "rule_type", "alert_type", "tactic", "technique", "log_source")


@decoder("datadog", _is_datadog, attributes=DATADOG_ATTRIBUTES)
def decode_datadog(doc: Any) -> list[Event]:
    """A Datadog security signal ('Datadog Alert Notification' on EventBridge)."""
    d = doc["detail"]
    signal = d["meta"]["signal"]
    tags = dict(t.split(":", 1) for t in d.get("tags") or [] if isinstance(t, str) and ":" in t)
    when, inferred = time_or_received(d.get("date_detected"), doc.get("time"))
    techniques = [_dd_technique(t) for t in d.get("tags") or [] if isinstance(t, str)]
    return [make_event(
        # the record's hash when it names no id (never "None"), as Falco, OCSF and Sentinel do
        id=given_id(text(signal.get("id")), text(d.get("id")), text(doc.get("id"))) or raw_id("datadog", doc),
        source="datadog",
        type=text(dig(signal, "rule", "name")) or text(signal.get("title")) or text(d.get("msg_title")) or "",
        severity=severity_from_label(signal.get("severity"), default=5.0),
        time=when,
        time_inferred=inferred,
        account=tags.get("account") or doc.get("account"),
        region=tags.get("region") or doc.get("region"),
        cloud="aws" if doc.get("account") else None,
        actor=dig(signal, "rule", "group_by_fields", "@userIdentity.arn"),
        resources=compact(_group_by(dig(signal, "rule", "group_by_fields") or {})),
        attributes={
            "title": signal.get("title"), "rule_id": dig(signal, "rule", "id"),
            "rule_type": dig(signal, "rule", "type"), "alert_type": d.get("alert_type"),
            "tactic": tags.get("tactic"), "technique": tags.get("technique"), "log_source": tags.get("source"),
        },
        raw=doc,
        threat=first(from_techniques(techniques), DATADOG.lookup(dig(signal, "rule", "name"))),
    )]


# ---- GCP Security Command Center -----------------------------------------------------------------
GCP_KINDS = {"compute.googleapis.com/instances": K.INSTANCE, "storage.googleapis.com/buckets": K.BUCKET,
             "iam.googleapis.com/serviceAccounts": K.IAM_USER, "secretmanager.googleapis.com/secrets": K.SECRET,
             "cloudkms.googleapis.com/keyRings": K.KMS_KEY, "cloudfunctions.googleapis.com/functions": K.FUNCTION,
             "aiplatform.googleapis.com/endpoints": K.ENDPOINT, "aiplatform.googleapis.com/models": K.MODEL}


def _is_scc(doc: Any) -> bool:
    finding = doc.get("finding") if isinstance(doc, dict) else None
    return isinstance(finding, dict) and "category" in finding and "resourceName" in finding


def _gcp_resource(name: str | None) -> Resource | None:
    if name is None:
        return None
    kind = next((k for prefix, k in GCP_KINDS.items() if name.startswith(f"//{prefix.split('/')[0]}")
                 and f"/{prefix.split('/')[1]}/" in name), K.OTHER)
    if "/serviceAccounts/" in name and "/keys/" in name:
        kind = K.ACCESS_KEY
    return res(kind, name, name=name.rsplit("/", 1)[-1])


# every `event.attributes` key this decoder can set (`responder runbooks validate` warns on others)
SCC_ATTRIBUTES = ("finding_class", "state", "mute", "resource_type", "tactic", "techniques", "detector", "method")


@decoder("gcp-scc", _is_scc, attributes=SCC_ATTRIBUTES)
def decode_scc(doc: Any) -> list[Event]:
    """A Security Command Center finding notification (Pub/Sub body)."""
    f = doc["finding"]
    resource = doc.get("resource") or {}
    when, inferred = time_or_received(f.get("eventTime"), f.get("createTime"))
    project = text(resource.get("projectDisplayName")) or text(resource.get("project"))
    return [make_event(
        id=given_id(text(f.get("name")), text(f.get("canonicalName"))) or raw_id("gcp-scc", doc),  # never "None"
        source="gcp-scc",
        type=text(f["category"]) or "",  # `unknown` (make_event) when missing or not text, never "None"
        severity=severity_from_label(f.get("severity"), default=5.0),
        time=when,
        time_inferred=inferred,
        account=project,
        cloud="gcp",
        actor=dig(f, "access", "principalEmail"),
        resources=compact([_gcp_resource(text(f["resourceName"])),  # none when missing or not text
                           ip_resource(dig(f, "access", "callerIp"), role="caller")]),
        attributes={
            "finding_class": f.get("findingClass"), "state": f.get("state"), "mute": f.get("mute"),
            "resource_type": resource.get("type"), "tactic": dig(f, "mitreAttack", "primaryTactic"),
            "techniques": dig(f, "mitreAttack", "primaryTechniques"), "detector": f.get("parentDisplayName"),
            "method": dig(f, "access", "methodName"),
        },
        raw=doc,
        threat=from_techniques([*(dig(f, "mitreAttack", "primaryTechniques") or []),
                                *(dig(f, "mitreAttack", "additionalTechniques") or [])]),
    )]
