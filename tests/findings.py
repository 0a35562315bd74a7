"""Builders for realistic test records."""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson

from responder.demo import eventbridge, finding_template


@cache
def _template() -> bytes:
    return orjson.dumps(finding_template())


def guardduty_finding(key_id: str, user: str = "ml-training", *, finding_id: str | None = None,
                      severity: float = 8, updated: str = "2026-11-25T10:00:00.000Z") -> dict[str, Any]:
    """A raw GuardDuty credential-exfiltration finding naming `key_id` of `user`."""
    f: dict[str, Any] = orjson.loads(_template())  # a fresh copy: cheaper than deepcopy
    f["resource"]["accessKeyDetails"]["accessKeyId"] = key_id
    f["resource"]["accessKeyDetails"]["userName"] = user
    f["severity"] = severity
    f["updatedAt"] = updated
    if finding_id:
        f["id"] = finding_id
    return f


def envelope_bytes(finding: dict[str, Any]) -> bytes:
    """The finding wrapped as an EventBridge event, encoded."""
    return orjson.dumps(eventbridge(finding))


def set_path(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    """Set `doc[path[0]]…[path[-1]] = value`, replacing anything on the way that is not an object."""
    cur = doc
    for part in path[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = cur[part] = {}
        cur = nxt
    cur[path[-1]] = value


def retype_ocsf(doc: dict[str, Any], types: list[str]) -> dict[str, Any]:
    """`doc`, an OCSF finding, re-typed as Security Lake maps an ASFF finding of `types`: `finding_info.types` and, when
    the record keeps one, the provider's copy in `unmapped` (which classifies GuardDuty's own finding)."""
    doc["finding_info"]["types"] = types
    if isinstance(doc.get("unmapped"), dict) and "FindingProviderFields.Types[]" in doc["unmapped"]:
        doc["unmapped"]["FindingProviderFields.Types[]"] = types
    return doc


def rescore_ocsf(doc: dict[str, Any], severity_id: int, word: str) -> dict[str, Any]:
    """`doc`, an OCSF finding, as Security Lake maps an ASFF finding of severity `word` (`High`): `severity_id`,
    `severity` and, when the record keeps one, the provider's label in `unmapped` (which outranks `severity_id`)."""
    doc["severity_id"], doc["severity"] = severity_id, word
    if isinstance(doc.get("unmapped"), dict) and "FindingProviderFields.Severity.Label" in doc["unmapped"]:
        doc["unmapped"]["FindingProviderFields.Severity.Label"] = word.upper()
    return doc
