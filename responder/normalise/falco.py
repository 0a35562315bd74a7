"""Falco `json_output` alerts (also as posted to Falcosidekick) and Falcosidekick's Alertmanager output."""

from __future__ import annotations

from typing import Any

from responder.models.event import Event, Resource, ResourceKind, Severity
from responder.models.threat import Threat
from responder.normalise.assemble import given_id, make_event, raw_id
from responder.normalise.fields import text, time_or_received
from responder.normalise.registry import decoder
from responder.normalise.resources import compact, ip_resource, res
from responder.normalise.threats import FALCO, first, from_techniques

K = ResourceKind
PRIORITY_SCORES = {
    "emergency": 10.0, "alert": 9.5, "critical": 9.0, "error": 7.5,
    "warning": 5.0, "notice": 3.0, "informational": 0.5, "info": 0.5, "debug": 0.0,
}


def _is_alert(doc: Any) -> bool:
    return isinstance(doc, dict) and "rule" in doc and "priority" in doc and ("output" in doc or "output_fields" in doc)


def _is_sidekick_alertmanager(doc: Any) -> bool:
    labels = doc.get("labels") if isinstance(doc, dict) else None
    return isinstance(labels, dict) and "rule" in labels and "priority" in labels and "annotations" in doc


def _priority(value: Any) -> Severity:
    word = (text(value) or "").lower()
    if word not in PRIORITY_SCORES:
        return Severity.of(5.0, original=value)
    return Severity.of(PRIORITY_SCORES[word], original=value)


def _placeholder(key: str, value: Any) -> bool:
    """The OCSF sample renders unresolved fields as their own names (`user.name: "user.name"`)."""
    return value == key or value in ("<NA>", "")


def _resources(fields: dict[str, Any], hostname: Any) -> tuple[Resource, ...]:
    def get(key: str) -> Any:
        value = fields.get(key)
        return None if value is None or _placeholder(key, value) else value

    image = get("container.image.repository")
    tag = get("container.image.tag")
    items = [
        res(K.CONTAINER, get("container.id"), name=get("container.name"),
            image=f"{image}:{tag}" if image and tag else image),
        res(K.POD, get("k8s.pod.name"), namespace=get("k8s.ns.name")),
        res(K.HOST, hostname),
        ip_resource(get("fd.sip"), role="server"),
        ip_resource(get("fd.cip"), role="client"),
    ]
    return compact(items)


def _threat(rule: Any, tags: Any) -> Threat | None:
    """The rule's row (with the rule's `T…` tags added), else the first mapped technique tag."""
    ids = tuple(tag for tag in tags if isinstance(tag, str)) if isinstance(tags, list) else ()
    found = FALCO.lookup(rule)
    return found.with_techniques(ids) if found is not None else first(from_techniques(ids))


def alert_to_event(doc: dict[str, Any]) -> Event:
    """One Falco alert; `evt.time` (epoch ns, beyond 2^53) is the fallback time."""
    fields = doc.get("output_fields") or {}
    when, inferred = time_or_received(doc.get("time"), fields.get("evt.time"))
    resources = _resources(fields, doc.get("hostname"))
    user = fields.get("user.name")
    return make_event(
        id=given_id(doc.get("uuid")) or raw_id("falco", doc),
        source="falco",
        type=text(doc["rule"]) or "",  # a rule that is not text is `unknown` (make_event), never "None"
        severity=_priority(doc.get("priority")),
        time=when,
        time_inferred=inferred,
        actor=None if user is None or _placeholder("user.name", user) else user,
        resources=resources,
        attributes={
            "output": doc.get("output"),
            "event_source": doc.get("source"),
            "tags": doc.get("tags"),
            "hostname": doc.get("hostname"),
            "proc_name": fields.get("proc.name"),
            "proc_cmdline": fields.get("proc.cmdline"),
            "file": fields.get("fd.name"),
            "evt_time_ns": str(fields["evt.time"]) if "evt.time" in fields else None,
        },
        raw=doc,
        subject=f"rule:{doc['rule']}",
        threat=_threat(doc["rule"], doc.get("tags")),
    )


def sidekick_to_event(doc: dict[str, Any]) -> Event:
    """One alert of a Falcosidekick → Alertmanager body (`labels` carry the rule and priority)."""
    labels = doc["labels"]
    annotations = doc.get("annotations") or {}
    when, inferred = time_or_received(doc.get("startsAt"))
    return make_event(
        id=raw_id("falco", doc),
        source="falco",
        type=text(labels["rule"]) or "",
        severity=_priority(labels.get("priority")),
        time=when,
        time_inferred=inferred,
        resources=compact([res(K.POD, labels.get("k8s_pod_name"), namespace=labels.get("k8s_ns_name")),
                           res(K.HOST, labels.get("hostname"))]),
        attributes={
            "output": annotations.get("description") or annotations.get("info"),
            "summary": annotations.get("summary"),
            "event_source": labels.get("source"),
            "alertmanager_severity": labels.get("severity"),
            "via": "falcosidekick.alertmanager",
        },
        raw=doc,
        subject=f"rule:{labels['rule']}",
        threat=_threat(labels["rule"], None),
    )


# every `event.attributes` key this decoder can set (`responder runbooks validate` warns on others)
FALCO_ATTRIBUTES = (
    "output", "event_source", "tags", "hostname", "proc_name", "proc_cmdline", "file", "evt_time_ns",
    "summary", "alertmanager_severity", "via",
)


@decoder("falco", _is_alert, attributes=FALCO_ATTRIBUTES)
def decode_alert(doc: Any) -> list[Event]:
    """A Falco alert."""
    return [alert_to_event(doc)]


@decoder("falco.alertmanager", _is_sidekick_alertmanager, attributes=FALCO_ATTRIBUTES)
def decode_sidekick(doc: Any) -> list[Event]:
    """One element of Falcosidekick's Alertmanager POST body (the array is split by the caller)."""
    return [sidekick_to_event(doc)]
