"""Event construction shared by every decoder: one place for ids, incident keys and attribute hygiene."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import orjson

from responder.models.event import Event, Resource, Severity, stable_id
from responder.models.threat import Threat
from responder.normalise import trusted
from responder.normalise.resources import incident_key

DERIVED = "digest:"
"""The prefix of an id derived from a record's content (`raw_id`): a record's own id never has it (`given_id`)."""


def raw_id(source: str, doc: Any) -> str:
    """A stable id for a record that carries none: `digest:` and a hash of its canonical JSON, so two distinct
    records never share it and a redelivery of the same record keeps it."""
    return DERIVED + stable_id(source, orjson.dumps(doc, option=orjson.OPT_SORT_KEYS).decode())


def given_id(*values: Any) -> str | None:
    """The first of `values` that can be a record's own id, as text (a string as it is, a number rendered); None
    when none can: missing, blank, a boolean or a container (whose text is the same for unrelated records: one
    would look like a repeat of the other) or claiming the `digest:` prefix (a forged record must not take the
    id that a real one without an id derives from its content). The caller then uses `raw_id`."""
    for value in values:
        if type(value) is str:
            if value and not value.isspace() and not value.startswith(DERIVED):
                return value
        elif type(value) is int or (type(value) is float and math.isfinite(value)):
            return str(value)
    return None


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
