"""Threat table machinery: a `ThreatTable` maps a source's native key to a Threat through rows made by `t`.

A key matches exactly or by literal prefix (`Policy:S3/Bucket*`), the longest key winning, with one dict probe
per distinct prefix length (never a regex scan) and a bounded memo per table. A row may name qualifiers (checks
on the record the decoder passes, from the closed set in `QUALIFIERS`) for the few calls that are threats only
in context: `CreateAccessKey` for *another* user; a key's row may be entries tried in order, for a call that is
one threat or another by what it asked (`PutEventSelectors`). The per-source tables are in responder.normalise.threats.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from responder.models.threat import Threat, ThreatCategory, is_technique
from responder.normalise.fields import dig

Qualifier = Callable[[Any], bool]


def _other_user(record: Any) -> bool:
    """CloudTrail: the call names a target user other than the caller (a key or login minted for someone else)."""
    target = dig(record, "requestParameters", "userName")
    ident = record.get("userIdentity") or {}
    caller = ident.get("userName") or dig(ident, "sessionContext", "sessionIssuer", "userName")
    return bool(target) and target != caller


def _user_key(record: Any) -> bool:
    """CloudTrail: the caller used a long-term access key (AKIA…), the credential LLMjacking steals: an IAM user's,
    or the root's (whose use pages on-call through llmjacking-unnamed-principal: it names no IAM user)."""
    ident = record.get("userIdentity") or {}
    return str(ident.get("accessKeyId", "")).startswith("AKIA")


def _succeeded(record: Any) -> bool:
    """CloudTrail: the call did not fail."""
    return not record.get("errorCode")


def _logs_writes(selector: Any) -> bool:
    """One event selector (basic or advanced) logs write management calls: management events included (the
    default) and not only reads."""
    if not isinstance(selector, dict):
        return False
    if "fieldSelectors" not in selector:  # basic: IncludeManagementEvents defaults to true, ReadWriteType to All
        return selector.get("includeManagementEvents", True) is not False \
            and selector.get("readWriteType", "All") in ("All", "WriteOnly")
    fields = {f.get("field"): f for f in selector.get("fieldSelectors") or () if isinstance(f, dict)}
    reads = fields.get("readOnly", {}).get("equals") or ()
    return "Management" in (fields.get("eventCategory", {}).get("equals") or ()) and "true" not in reads


def _writes_unlogged(record: Any) -> bool:
    """CloudTrail PutEventSelectors: the trail's new selectors log no write management call (management events
    excluded, only reads kept, no selector: Stratus Red Team's `cloudtrail-event-selectors`), or the record does not
    say which (treated as blinded): the trail still reports logging, but an attacker's calls go unrecorded."""
    params = record.get("requestParameters")
    selectors = dig(params, "advancedEventSelectors") or dig(params, "eventSelectors")
    return not isinstance(selectors, list) or not any(_logs_writes(s) for s in selectors)


QUALIFIERS: dict[str, Qualifier] = {"other_user": _other_user, "user_key": _user_key, "succeeded": _succeeded,
                                    "writes_unlogged": _writes_unlogged}


@dataclass(frozen=True)
class Entry:
    """One row: the threat, and the qualifiers the record must pass for it to apply."""

    threat: Threat
    when: tuple[str, ...] = ()

    def applies(self, record: Any) -> bool:
        """Whether every qualifier holds for `record` (no qualifier: always)."""
        return all(QUALIFIERS[name](record) for name in self.when)


def t(category: ThreatCategory, *techniques: str, when: Iterable[str] = ()) -> Entry:
    """A table row (technique ids are checked when the module loads)."""
    bad = [x for x in techniques if not is_technique(x)]
    unknown = [q for q in when if q not in QUALIFIERS]
    if bad or unknown:
        raise ValueError(f"bad threat table row: techniques {bad}, qualifiers {unknown}")
    return Entry(Threat(category=category, techniques=techniques), tuple(when))


Row = Entry | tuple[Entry, ...]
"""A key's row: one entry, or entries tried in order, the first whose qualifiers hold winning (a call that is one
threat or another by what it asked: `PutEventSelectors` blinding the trail, or only narrowing it)."""

_MEMO_SIZE = 4096  # keys remembered per table; past that, lookups search (a flood of novel keys stays bounded)
_MEMO_KEY = 256  # longest key remembered: a record's type is the sender's to choose, up to the record size limit


class ThreatTable:
    """Exact keys and `prefix*` keys; the longest matching key wins."""

    def __init__(self, rows: Mapping[str, Row]) -> None:
        self.rows = dict(rows)
        tried = {k: v if isinstance(v, tuple) else (v,) for k, v in rows.items()}
        self._exact = {k: v for k, v in tried.items() if not k.endswith("*")}
        self._prefix: dict[int, dict[str, tuple[Entry, ...]]] = {}
        for key, entries in tried.items():
            if key.endswith("*"):
                self._prefix.setdefault(len(key) - 1, {})[key[:-1]] = entries
        self._lengths = sorted(self._prefix, reverse=True)
        self._memo: dict[str, tuple[Entry, ...] | None] = {}  # key → row (a source's keys are a small vocabulary)
        self._categories = {e.threat.category for entries in tried.values() for e in entries}

    def entry(self, key: str) -> tuple[Entry, ...] | None:
        """The row for `key` (its entries, in the order tried): exact first, then the longest prefix."""
        try:
            return self._memo[key]
        except KeyError:
            found = self._search(key.strip())  # the type as `make_event` stores it: padding is no disguise
            if len(self._memo) < _MEMO_SIZE and len(key) <= _MEMO_KEY:
                self._memo[key] = found
            return found

    def _search(self, key: str) -> tuple[Entry, ...] | None:
        found = self._exact.get(key)
        if found is not None:
            return found
        for length in self._lengths:
            if length <= len(key):
                found = self._prefix[length].get(key[:length])
                if found is not None:
                    return found
        return None

    def lookup(self, key: Any, record: Any = None) -> Threat | None:
        """The threat for `key` (None when unmapped or a qualifier fails on `record`)."""
        if not isinstance(key, str):
            return None
        for found in self.entry(key) or ():
            if not found.when or found.applies(record):
                return found.threat
        return None

    def categories(self) -> set[ThreatCategory]:
        """Every category a row can produce."""
        return set(self._categories)
