"""Event construction shared by every decoder: one place for ids, incident keys and attribute hygiene."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from responder.models.event import Event, Resource, Severity, stable_id
from responder.models.threat import Threat
from responder.normalise import trusted
from responder.normalise.resources import incident_key


def raw_id(source: str, doc: Any) -> str:
    """A stable id for a record that carries none: a hash of its canonical JSON."""
    return stable_id(source, orjson.dumps(doc, option=orjson.OPT_SORT_KEYS).decode())


def make_event(
    *,
    source: str,
    type: str,
    severity: Severity,
    time: datetime,
    id: str,
    resources: tuple[Resource, ...] = (),
    account: Any = None,
    region: Any = None,
    cloud: str | None = None,
    actor: Any = None,
    attributes: dict[str, Any] | None = None,
    raw: Any = None,
    subject: str | None = None,
    time_inferred: bool = False,
    threat: Threat | None = None,
) -> Event:
    """An Event (built directly when `trusted`'s checks prove validation needless); the incident key is account +
    primary resource (else `subject`, else the id)."""
    acct = str(account) if account not in (None, "") else None
    # drop None, "", [] and {} (only a falsy value can be one of the last three: compare only those)
    attrs = {k: v for k, v in (attributes or {}).items()
             if v is not None and (v or (v != "" and v != [] and v != {}))}
    if time_inferred:
        attrs["time_source"] = "received"
    return trusted.assembled({
        "id": id,
        "source": source,
        "type": type.strip() or "unknown",
        "severity": severity,
        "time": time,
        "account": acct,
        "region": str(region) if region else None,
        "cloud": cloud,
        "actor": str(actor) if actor not in (None, "") else None,
        "resources": resources,
        "incident_key": incident_key(acct, resources, subject or f"{source}:{id}"),
        "attributes": attrs,
        "threat": threat,
        "raw": raw,
    })
