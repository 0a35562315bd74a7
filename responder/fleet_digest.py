"""The fleet digest: what every replica must agree on (the runbooks as loaded and the settings that change what
they do), checked against the fleet's by `responder.engine.fleetguard` at start (see docs/fleet.md).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from responder.models.runbook import Runbook
from responder.settings import Settings

DIGESTED = frozenset({"topics", "topic_formats", "changelog_topic", "guard_quotas", "guard_max_targets",
                      "protected_ids", "protected_tags", "dry_run", "require_signature"})
DIGESTED_IF_SET = frozenset({"aws_account_id", "aws_region", "approver_identities", "event_signing_key_sources",
                             "operator_permissions", "model_trusted_keys", "model_accept_legacy_signatures",
                             "model_refuse_legacy_signatures", "verify_settle_s"})
"""Digested since 2026-12-04 (operator_permissions, the model_* ones and verify_settle_s since 2026-12-05), each only
when not at its default: a fleet that sets none of them kept its digest through the upgrade (no
`RESPONDER_FLEET_ADOPT_DIGEST` needed). Key ids, identities, source globs, command names, public-key fingerprints
and a number of seconds: no secret."""


def key_fingerprints(paths: Iterable[str]) -> list[str]:
    """The trusted model keys as the set of their contents' SHA-256 (one unreadable: its path), so the same keys
    mounted at other paths or listed in another order are one fleet, and another key at the same path is not."""
    found: set[str] = set()
    for path in paths:
        try:
            found.add(hashlib.sha256(Path(path).read_bytes()).hexdigest())
        except OSError:
            found.add(f"unreadable:{path}")
    return sorted(found)


def fleet_digest(runbooks: Iterable[Runbook], settings: Settings) -> str:
    """What every replica must agree on: the runbooks (as loaded) and the settings that change what they do."""
    doc: dict[str, Any] = {
        "runbooks": sorted(rb.model_dump_json() for rb in runbooks),
        "settings": settings.model_dump_json(include=set(DIGESTED)),
    }
    protection = settings.model_dump(mode="json", include=set(DIGESTED_IF_SET), exclude_defaults=True)
    if grants := {k: sorted(set(c)) for k, c in protection.pop("operator_permissions", {}).items() if c}:
        protection["operator_permissions"] = grants  # a grant's order, repeats or an empty one are no change
    if keys := protection.pop("model_trusted_keys", None):
        protection["model_trusted_keys"] = key_fingerprints(keys)
    if protection:
        doc["protection"] = protection  # its maps sorted by key below: the order they were written in is no change
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
