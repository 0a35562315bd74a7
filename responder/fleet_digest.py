"""The fleet digest: what every replica must agree on (the runbooks as loaded, the settings that change what they
do, and whether it writes in Kafka transactions), checked against the fleet's by `responder.engine.fleetguard` at
start, once its transactions are settled (see docs/fleet.md).

Every setting is in one of four groups (a test fails on a setting in none): DIGESTED, DIGESTED_IF_SET,
IN_THE_RUNBOOKS (digested as the runbooks they load), or NOT_DIGESTED with the reason replicas may differ in it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from responder.errors import ConfigError
from responder.models.runbook import Runbook
from responder.settings import Settings

DIGESTED = frozenset({"topics", "topic_formats", "changelog_topic", "guard_quotas", "guard_max_targets",
                      "protected_ids", "protected_tags", "dry_run", "require_signature"})
DIGESTED_IF_SET = frozenset({"aws_account_id", "aws_region", "approver_identities", "event_signing_key_sources",
                             "operator_permissions", "model_trusted_keys", "model_accept_legacy_signatures",
                             "model_refuse_legacy_signatures", "verify_settle_s",
                             "model_registry", "model_ssm_prefix", "approval_keys", "event_signing_keys",
                             "notify_keys", "approvals_topic", "approval_requests_topic", "operator_requests_topic",
                             "operator_replies_topic", "approval_decision_max_lifetime", "max_record_bytes",
                             "evict_every"})
"""Digested since 2026-12-04 (operator_permissions, the model_* ones and verify_settle_s since 2026-12-05; the
registry, the SSM prefix, the key ids, the decision and operator topics, the decision lifetime and
max_record_bytes since 2026-12-05, later that day; evict_every since 2026-12-05: when a closed incident leaves the
state and the changelog, its tombstone written and the closed-group horizon counted from then, so members that
differ in it hand partitions over with different memories), each only when not at its default: a fleet that sets
none of them kept its digest through the upgrade (no `RESPONDER_FLEET_ADOPT_DIGEST` needed). Key ids, identities,
source globs, command names, public-key fingerprints, topic names, a registry URL and numbers: never a secret."""
KEY_IDS = ("approval_keys", "event_signing_keys", "notify_keys")
"""Digested as their sorted ids: a secret changed under the same id is not seen (rotate by adding an id)."""
IN_THE_RUNBOOKS = frozenset({"runbooks_dir", "default_on_failure"})
"""The runbooks as loaded are digested, each with the default escalation it is given."""
NOT_DIGESTED: dict[str, frozenset[str]] = {
    "per writer: each replica keeps and signs its own timeline, verified together by `timeline verify --writers`":
        frozenset({"timeline_path", "timeline_linger_ms", "timeline_signing_key", "timeline_verify_key",
                   "timeline_checkpoint_every", "timeline_checkpoint_interval", "timeline_archive",
                   "timeline_archive_retention_days", "timeline_mirror_topic", "timeline_mirror_max_pending",
                   "timeline_writers"}),
    "how a replica reaches AWS, not what it asks: credentials and timeouts may differ (a replica that cannot reach "
    "AWS fails its steps, which escalate); the endpoint is also where the guard table is read, so a replica with "
    "another one (a sandbox) checks another table, is in another fleet, and no digest can see it":
        frozenset({"aws_endpoint_url", "aws_access_key_id", "aws_secret_access_key", "aws_call_timeout",
                   "model_deploy_poll_s", "model_deploy_timeout_s"}),
    "read by `responder iam-policy` only, never by the service":
        frozenset({"self_principal_arns", "self_policy_arns", "self_kms_key_arns"}),
    "only ever makes a replica more careful (every step waits for a human); refusing a replica that turns it on "
    "would hold back the brake; the fleet-wide switch is the guard table's (`responder fleet kill-switch`)":
        frozenset({"kill_switch", "kill_switch_file"}),
    "read by the commands an operator runs, not by `responder run`":
        frozenset({"operator_reply_timeout", "operator_unverified_replies", "approval_key_id",
                   "approval_decision_ttl"}),
    "observation: logs, metrics, traces":
        frozenset({"log_format", "log_level", "metrics_port", "metrics_host", "otel_exporter_otlp_endpoint"}),
    "read by `responder intake`, the HTTP front door, which is no replica":
        frozenset({"intake_host", "intake_port", "intake_topic", "intake_sources", "intake_signing_key_id",
                   "intake_max_body_bytes", "intake_max_depth", "intake_read_timeout_s", "intake_max_connections",
                   "intake_send_timeout_s", "intake_dedupe_ttl_s", "intake_dedupe_max"}),
    "how records arrive and how fast, not what is done with them; a replica in another group or guard table is in "
    "another fleet; the digest's own switch is this replica's role in a rollout":
        frozenset({"kafka_bootstrap", "group_id", "deadletter_topic", "deadletter_max_bytes", "session_timeout_ms",
                   "rebalance_timeout_ms", "kafka_max_poll_interval_ms", "changelog_write_deadline",
                   "kafka_group_instance_id", "max_batch", "max_in_flight",
                   "kafka_fetch_max_wait_ms", "kafka_fetch_idle_wait_ms", "kafka_commit_interval_ms",
                   "kafka_connect_timeout", "kafka_manual_assignment", "fenced_rejoins",
                   "fleet_guard_table", "fleet_adopt_digest", "kafka_security"}),
    "the setting itself (auto and on come to the same on a broker with transactions); what it comes to at start is: "
    "a fleet member without Kafka transactions is digested apart (`fleet_digest`'s `transactions`)":
        frozenset({"kafka_transactions"}),
}


def read_trusted_key(path: Path) -> bytes:
    """A trusted model key's bytes; one that cannot be read (missing, a directory, no permission) is a bad setting
    naming itself and the file (exit 3), not a key no version can verify against."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"RESPONDER_MODEL_TRUSTED_KEYS: cannot read {path} ({exc.strerror or exc})") from None


def key_fingerprints(paths: Iterable[Path]) -> list[str]:
    """The trusted model keys as the set of their contents' SHA-256, so the same keys mounted at other paths or
    listed in another order are one fleet, and another key at the same path is not."""
    return sorted({hashlib.sha256(read_trusted_key(Path(path))).hexdigest() for path in paths})


def digested_runbook(rb: Runbook) -> str:
    """A runbook as digested: `require_signature` only when set (since 2026-12-07), so a fleet whose runbooks do not
    set it keeps its digest through the upgrade that added it."""
    return rb.model_dump_json(exclude=None if rb.require_signature else {"require_signature"})


def fleet_digest(runbooks: Iterable[Runbook], settings: Settings, *, transactions: bool = True) -> str:
    """What every replica must agree on: the runbooks (as loaded) and the settings that change what they do, and
    whether it writes its changelog in Kafka transactions (`transactions`, what `kafka_transactions` came to at start:
    responder/ingest/txnprobe.py `choose`). A member without them fences no zombie and is fenced by none, so a fleet
    with them would lose that guarantee on its partitions: it is refused. Digested only when False, so that a fleet
    with transactions kept its digest through that change (since 2026-12-07)."""
    doc: dict[str, Any] = {
        "runbooks": sorted(digested_runbook(rb) for rb in runbooks),
        "settings": settings.model_dump_json(include=set(DIGESTED)),
    }
    if not transactions:
        doc["kafka_transactions"] = "off"
    protection = settings.model_dump(mode="json", include=set(DIGESTED_IF_SET), exclude_defaults=True)
    if grants := {k: sorted(set(c)) for k, c in protection.pop("operator_permissions", {}).items() if c}:
        protection["operator_permissions"] = grants  # a grant's order, repeats or an empty one are no change
    if protection.pop("model_trusted_keys", None):
        protection["model_trusted_keys"] = key_fingerprints(settings.model_trusted_keys)
    for name in KEY_IDS:
        if protection.pop(name, None):
            protection[name] = sorted(getattr(settings, name))  # the ids; the secrets stay out
    if protection:
        doc["protection"] = protection  # its maps sorted by key below: the order they were written in is no change
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
