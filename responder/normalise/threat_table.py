"""Threat table machinery: a `ThreatTable` maps a source's native key to a Threat through rows made by `t`.

A key matches exactly or by literal prefix (`Policy:S3/Bucket*`), the longest key winning, with one dict probe
per distinct prefix length (never a regex scan) and a bounded memo per table. A row may name qualifiers (checks
on the record the decoder passes, from the closed set in `QUALIFIERS`) for the few calls that are threats only
in context: `CreateAccessKey` for *another* user. The per-source tables are in responder.normalise.threats.
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


QUALIFIERS: dict[str, Qualifier] = {"other_user": _other_user, "user_key": _user_key, "succeeded": _succeeded}


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


_MEMO_SIZE = 4096  # keys remembered per table; past that, lookups search (a flood of novel keys stays bounded)
_MEMO_KEY = 256  # longest key remembered: a record's type is the sender's to choose, up to the record size limit


class ThreatTable:
    """Exact keys and `prefix*` keys; the longest matching key wins."""

    def __init__(self, rows: Mapping[str, Entry]) -> None:
        self.rows = dict(rows)
        self._exact = {k: v for k, v in rows.items() if not k.endswith("*")}
        self._prefix: dict[int, dict[str, Entry]] = {}
        for key, entry in rows.items():
            if key.endswith("*"):
                self._prefix.setdefault(len(key) - 1, {})[key[:-1]] = entry
        self._lengths = sorted(self._prefix, reverse=True)
        self._memo: dict[str, Entry | None] = {}  # key → row (a source's keys are a small vocabulary)

    def entry(self, key: str) -> Entry | None:
        """The row for `key`: exact first, then the longest prefix."""
        try:
            return self._memo[key]
        except KeyError:
            found = self._search(key.strip())  # the type as `make_event` stores it: padding is no disguise
            if len(self._memo) < _MEMO_SIZE and len(key) <= _MEMO_KEY:
                self._memo[key] = found
            return found

    def _search(self, key: str) -> Entry | None:
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
        found = self.entry(key)
        if found is None or (found.when and not found.applies(record)):
            return None
        return found.threat

    def categories(self) -> set[ThreatCategory]:
        """Every category a row can produce."""
        return {e.threat.category for e in self.rows.values()}
