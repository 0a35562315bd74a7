"""Security Hub's (not Security Hub CSPM's) EventBridge event `Findings Imported V2`: OCSF findings, one event each.

The envelope is AWS's documented one (docs.aws.amazon.com/securityhub/latest/userguide/
securityhub-v2-cwe-event-formats.html): `source` `aws.securityhub`, `detail-type` `Findings Imported V2`,
`detail.findings[]` of OCSF finding objects. Each finding goes through the OCSF decoder (`ocsf.event_of`), so the
events have source `ocsf` and one runbook serves a finding however it arrived; GuardDuty's own findings relayed
here are classified by their GuardDuty type, as the native and ASFF lanes classify them.
"""

from __future__ import annotations

from typing import Any

from responder.errors import ValidationFailed
from responder.models.event import Event
from responder.normalise import trusted
from responder.normalise.assemble import each_part
from responder.normalise.fields import dig
from responder.normalise.ocsf import FINDING_CLASSES, OCSF_ATTRIBUTES, event_of, finding_threat, finding_type
from responder.normalise.provider_fields import ocsf_severity
from responder.normalise.registry import decoder, head

DETAIL_TYPE = "Findings Imported V2"
V2_ATTRIBUTES = (*OCSF_ATTRIBUTES, "detail_type", "envelope_id")
HEAD_FIELDS = ("source", "type", "severity", "threat")


def is_v2(doc: Any) -> bool:
    """Security Hub's `Findings Imported V2` envelope (Security Hub CSPM's ASFF events say `Security Hub Findings -
    Imported` / `- Custom Action`)."""
    return type(doc) is dict and doc.get("detail-type") == DETAIL_TYPE and doc.get("source") == "aws.securityhub" \
        and isinstance(dig(doc, "detail", "findings"), list)


def _finding(f: Any) -> dict[str, Any]:
    """`f` when it is an OCSF finding (a class 2001-2006 object with metadata), else a clear rejection."""
    if type(f) is not dict or type(f.get("class_uid")) is not int or not isinstance(f.get("metadata"), dict):
        raise ValidationFailed("securityhub.v2: a finding that is not an OCSF object with class_uid and metadata")
    if f["class_uid"] not in FINDING_CLASSES:
        raise ValidationFailed(f"securityhub.v2: class_uid {f['class_uid']} is not an OCSF finding class")
    return f


@decoder("securityhub.v2", is_v2, attributes=V2_ATTRIBUTES, source="ocsf")
def decode(doc: Any) -> list[Event]:
    """`Findings Imported V2`: one OCSF event per finding in `detail.findings` (AWS sends one per event)."""
    findings = doc["detail"]["findings"]
    if not findings:
        raise ValidationFailed("securityhub.v2: detail.findings is empty")
    return each_part("securityhub.v2 finding", findings, lambda f: [event_of(_finding(f), envelope=doc)])


@head("securityhub.v2", HEAD_FIELDS)
def v2_head(doc: Any) -> Event:
    """The source, type, severity and threat of the event's one finding, without its resources (raises on anything
    else: the full decoder decides)."""
    findings = doc["detail"]["findings"]
    if len(findings) != 1:
        raise ValueError("securityhub.v2 head: not exactly one finding")
    f = _finding(findings[0])
    return trusted.head({"source": "ocsf", "type": finding_type(f, f["class_uid"]).strip() or "unknown",
                         "severity": ocsf_severity(f), "threat": finding_threat(f)})
