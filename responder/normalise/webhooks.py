"""Webhook bodies: Splunk alert action, Wazuh alert, Prometheus Alertmanager (v4 group or bare v2 alert)."""

from __future__ import annotations

from typing import Any

from responder.models.event import Event, Resource, ResourceKind, Severity, stable_id
from responder.normalise.assemble import DERIVED, canonical, each_part, given_id, make_event, raw_id
from responder.normalise.fields import dig, number, severity_from_label, text, time_or_received
from responder.normalise.registry import decoder
from responder.normalise.resources import access_key, compact, ip_resource, principal, res
from responder.normalise.threats import SPLUNK, first, from_techniques

K = ResourceKind
ZERO_TIME = "0001-01-01T00:00:00Z"


# ---- Splunk -----------------------------------------------------------------------------------
def _is_splunk(doc: Any) -> bool:
    return isinstance(doc, dict) and "sid" in doc and "search_name" in doc


# result fields naming an AWS access key and its user (CloudTrail sourcetype, CIM, AWS Health exposed-key events)
KEY_FIELDS = ("access_key_id", "aws_access_key_id", "userIdentity.accessKeyId", "affectedEntities{}.entityValue")
ACCOUNT_FIELDS = ("account", "aws_account_id", "recipientAccountId")
USER_FIELDS = ("user_name", "userName", "userIdentity.userName", "user")
# the principal's type (CloudTrail userIdentity.type: IAMUser, AssumedRole, Root…)
USER_TYPE_FIELDS = ("user_type", "userIdentity.type", "userType", "principal_type")


def _pick(result: dict[str, Any], keys: tuple[str, ...]) -> Any:
    return next((result[k] for k in keys if result.get(k)), None)


def _listed(value: Any) -> list[Any]:
    """A Splunk multivalue field arrives as a list or a single string."""
    return value if isinstance(value, list) else [value] if value else []


def _principal(result: dict[str, Any]) -> list[Resource | None]:
    """The access key and, when the result says whose (`user_type`), the IAM user or role it belongs to."""
    user, user_type = _pick(result, USER_FIELDS), text(_pick(result, USER_TYPE_FIELDS))
    return [access_key(_pick(result, KEY_FIELDS), user, user_type=user_type), principal(user_type, user, name=user)]


# every `event.attributes` key this decoder can set (`responder runbooks validate` warns on others)
SPLUNK_ATTRIBUTES = ("app", "owner", "results_link", "log_source", "sourcetype", "raw_line")
MAX_SID = 2048 - 17  # an id of at most 2,048 characters: less `#` and the result's 16 hex digits


def _splunk_id(doc: dict[str, Any]) -> str:
    """`<sid>#<hash of the result>`: one search job (one `sid`) alerts on each of its results (real-time, "for each
    result"), and two of its results must not be one event (the second a repeat of the first in their incident); a
    redelivery of one result keeps it. The record's own digest when the `sid` is no id (`given_id`). Total: a result
    nested past orjson's writing limit is hashed by `canonical`'s fallback, and a `sid` over MAX_SID (the id would be
    over 2,048 characters) is replaced by `digest:` and its hash."""
    sid = given_id(doc["sid"])
    if sid is None:
        return raw_id("splunk", doc)
    if len(sid) > MAX_SID:  # `digest:` is what no real `sid` starts with (`given_id`), so no sid can spell this
        sid = DERIVED + stable_id("splunk-sid", sid)
    # never a derived id (`raw_id`): that has no `#`
    return f"{sid}#{stable_id('splunk', canonical(doc.get('result')))[:16]}"


@decoder("splunk", _is_splunk, attributes=SPLUNK_ATTRIBUTES)
def decode_splunk(doc: Any) -> list[Event]:
    """A Splunk 'webhook' alert action body; severity from the result's `severity`/`urgency`, else medium."""
    result = doc.get("result") or {}
    when, inferred = time_or_received(result.get("_time"))
    word = result.get("severity") or result.get("urgency")
    return [make_event(
        id=_splunk_id(doc),
        source="splunk",
        type=str(doc["search_name"]),
        severity=severity_from_label(word, default=5.0),
        time=when,
        time_inferred=inferred,
        account=_pick(result, ACCOUNT_FIELDS),
        actor=text(result.get("user")) or text(result.get("USER")),
        resources=compact([*_principal(result),
                           res(K.HOST, result.get("host")), ip_resource(result.get("src_ip") or result.get("src"))]),
        attributes={
            "app": doc.get("app"), "owner": doc.get("owner"), "results_link": doc.get("results_link"),
            "log_source": result.get("source"), "sourcetype": result.get("sourcetype"), "raw_line": result.get("_raw"),
        },
        raw=doc,
        subject=f"search:{doc['search_name']}",
        threat=first(from_techniques(_listed(result.get("mitre_technique_id"))), SPLUNK.lookup(doc["search_name"])),
    )]


# ---- Wazuh ------------------------------------------------------------------------------------
def _is_wazuh(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("rule"), dict) and "level" in doc["rule"] \
        and isinstance(doc.get("agent"), dict)


# every `event.attributes` key this decoder can set (`responder runbooks validate` warns on others)
WAZUH_ATTRIBUTES = ("rule_id", "groups", "firedtimes", "decoder", "location", "file", "srcip")


@decoder("wazuh", _is_wazuh, attributes=WAZUH_ATTRIBUTES)
def decode_wazuh(doc: Any) -> list[Event]:
    """A Wazuh alert (alerts.json line); rule.level 0-15 is scaled to 0-10."""
    rule = doc["rule"]
    agent = doc["agent"]
    level = number(rule.get("level")) or 0.0
    when, inferred = time_or_received(doc.get("timestamp"))
    srcip = dig(doc, "data", "srcip")
    return [make_event(
        id=given_id(doc.get("id")) or raw_id("wazuh", doc),
        source="wazuh",
        type=text(rule.get("description")) or f"rule {rule.get('id')}",
        severity=Severity.of(min(level, 15.0) * 10 / 15, original=rule.get("level")),
        time=when,
        time_inferred=inferred,
        actor=dig(doc, "data", "srcuser") or dig(doc, "data", "dstuser"),
        resources=compact([res(K.HOST, agent.get("name"), agent_id=agent.get("id"), ip=agent.get("ip")),
                           ip_resource(srcip, role="source")]),
        attributes={
            "rule_id": text(rule.get("id")), "groups": rule.get("groups"), "firedtimes": rule.get("firedtimes"),
            "decoder": dig(doc, "decoder", "name"), "location": doc.get("location"),
            "file": dig(doc, "syscheck", "path"), "srcip": text(srcip),
        },
        raw=doc,
        subject=f"rule:{rule.get('id') or rule.get('description')}",
    )]


# ---- Prometheus Alertmanager --------------------------------------------------------------------
def _is_group(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("alerts"), list) and ("groupKey" in doc or "receiver" in doc)


def _is_alert(doc: Any) -> bool:
    labels = doc.get("labels") if isinstance(doc, dict) else None
    falcosidekick = isinstance(labels, dict) and "rule" in labels and "priority" in labels
    return isinstance(labels, dict) and "alertname" in labels and not falcosidekick \
        and ("startsAt" in doc or "annotations" in doc)


def alert_to_event(alert: dict[str, Any], group: dict[str, Any]) -> Event:
    """One alert; `labels.severity` is free-form (critical, warning…), medium when absent."""
    labels = {**(group.get("commonLabels") or {}), **(alert.get("labels") or {})}
    annotations = {**(group.get("commonAnnotations") or {}), **(alert.get("annotations") or {})}
    when, inferred = time_or_received(alert.get("startsAt"))
    ends = alert.get("endsAt")
    return make_event(
        id=(given_id(alert.get("fingerprint")) or raw_id("alertmanager", alert)) + f"@{alert.get('startsAt')}",
        source="alertmanager",
        type=str(labels["alertname"]),
        severity=severity_from_label(labels.get("severity"), default=5.0),
        time=when,
        time_inferred=inferred,
        account=labels.get("account") or labels.get("account_id"),
        region=labels.get("region"),
        resources=compact([
            res(K.POD, labels.get("pod"), namespace=labels.get("namespace")),
            res(K.CONTAINER, labels.get("container")),
            res(K.HOST, labels.get("host") or labels.get("instance") or labels.get("node")),
            res(K.ENDPOINT, labels.get("endpoint") or labels.get("endpoint_name")),
            res(K.MODEL, labels.get("model")),
        ]),
        attributes={
            "status": alert.get("status") or group.get("status"), "receiver": group.get("receiver"),
            "group_key": group.get("groupKey"), "summary": annotations.get("summary"),
            "description": annotations.get("description"), "labels": labels,
            "ends_at": ends if ends and ends != ZERO_TIME else None,
            "generator_url": alert.get("generatorURL"),
        },
        raw=alert,
        subject=f"alert:{labels['alertname']}",
    )


# every `event.attributes` key this decoder can set (`responder runbooks validate` warns on others)
ALERTMANAGER_ATTRIBUTES = ("status", "receiver", "group_key", "summary", "description", "labels", "ends_at",
                           "generator_url")


@decoder("alertmanager", _is_group, attributes=ALERTMANAGER_ATTRIBUTES)
def decode_group(doc: Any) -> list[Event]:
    """An Alertmanager webhook (version 4): one event per alert, each decoded on its own (`each_part`)."""
    return each_part("alertmanager alert", doc["alerts"], lambda a: [alert_to_event(a, doc)])


@decoder("alertmanager.alert", _is_alert, attributes=ALERTMANAGER_ATTRIBUTES)
def decode_alert(doc: Any) -> list[Event]:
    """One bare alert, as in the API v2 POST body (arrays are split by the caller)."""
    return [alert_to_event(doc, {})]
