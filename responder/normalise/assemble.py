"""Event construction shared by every decoder: one place for ids, incident keys and attribute hygiene."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import orjson

from responder.errors import EventRejected, PartlyRejected, ValidationFailed
from responder.models.event import Event, Resource, Severity, stable_id
from responder.models.threat import Threat
from responder.normalise import trusted
from responder.normalise.resources import incident_key

DERIVED = "digest:"
"""The prefix of an id derived from a record's content (`raw_id`): a record's own id never has it (`given_id`)."""


def raw_id(source: str, doc: Any) -> str:
    """A stable id for a record that carries none: `digest:` and a hash of its canonical JSON (`canonical`), so two
    distinct records never share it and a redelivery of the same record keeps it."""
    return DERIVED + stable_id(source, canonical(doc))


def canonical(value: Any) -> str:
    """`value`'s canonical JSON (sorted keys); for one nested deeper than orjson writes (255 levels: it reads 1,024),
    `deep:` and the SHA-256 of `_deep_encoding` (never JSON text, which cannot start with `d`). Total for anything
    orjson read, and key order does not change it."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONEncodeError:
        return "deep:" + _deep_encoding(value)


def _deep_encoding(value: Any) -> str:
    """A hash of a length-prefixed encoding of `value` (keys sorted), built with a stack: no nesting limit."""
    digest = hashlib.sha256()
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if type(item) is dict:
            digest.update(b"{%d:" % len(item))
            for key in sorted(item, reverse=True):
                stack += [item[key], (key,)]  # a tuple marks a key: JSON has none
        elif type(item) is list:
            digest.update(b"[%d:" % len(item))
            stack.extend(reversed(item))
        elif type(item) is tuple:
            digest.update(b"k" + orjson.dumps(item[0]))
        else:  # a JSON scalar: its JSON text never holds \x1f raw
            digest.update(orjson.dumps(item) + b"\x1f")
    return digest.hexdigest()


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


# what a decoder raises on a part it cannot read (as `normalise._decode_one` catches for a whole record)
PART_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError)


def each_part(what: str, parts: Sequence[Any], decode: Callable[[Any], list[Event]]) -> list[Event]:
    """The Events of every part of a record of many (`what` names them: `securityhub finding`), each decoded on its
    own: one part that cannot be decoded does not cost the others. A record of one part raises as it always did;
    of more, PartlyRejected keeps the others' Events and names each bad part by its index (when none is left, the
    bad parts' own rejection). Either has the bad parts' reason when they share one, else `validation`."""
    if len(parts) == 1:
        return decode(parts[0])
    kept: list[Event] = []
    bad: list[tuple[int, str]] = []
    kinds: set[type[EventRejected]] = set()
    for n, part in enumerate(parts):
        try:
            kept.extend(decode(part))
        except PartlyRejected as exc:  # an array element that is itself a record of many
            kept.extend(exc.kept)
            bad.append((n, exc.detail))
            kinds.add(ValidationFailed)
        except EventRejected as exc:
            bad.append((n, exc.detail))
            kinds.add(type(exc))
        except PART_ERRORS as exc:
            bad.append((n, f"{exc.__class__.__name__}: {exc}"))
            kinds.add(ValidationFailed)
    if not bad:
        return kept
    kind = kinds.pop() if len(kinds) == 1 else ValidationFailed
    detail = "; ".join(f"{what} [{n}] of {len(parts)}: {why}" for n, why in bad)
    if not kept:
        raise kind(detail)
    raise PartlyRejected(f"{detail} ({len(parts) - len(bad)} of {len(parts)} decoded)", kept, [n for n, _ in bad],
                         reason=kind.reason_code)


def _account_text(account: Any) -> str | None:
    """An event's account as text; an integer (a SIEM's number field, its leading zeros lost) of up to 12 digits is
    zero-padded to the 12 of an AWS account."""
    if isinstance(account, int) and not isinstance(account, bool) and 0 <= account < 10**12:
        return f"{account:012d}"
    return str(account) if account not in (None, "") else None


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
    acct = _account_text(account)
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
