"""Settings → the service's collaborators that need checking first: guards, record signatures, the archive.

Each refuses a bad setting with a ConfigError at start-up, before any client is built.
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog
from pydantic import ValidationError

from responder.actuators.aws.archive import S3Archive
from responder.actuators.model.backends import config_from
from responder.actuators.registry import Registry
from responder.auth import ApproverKeys
from responder.catalog.unsigned import unguarded
from responder.engine.arnforms import Home
from responder.engine.guards import GuardPolicy, Guards
from responder.errors import ConfigError
from responder.ingest.authn import RecordAuthenticator
from responder.ingest.topics import notification_topics
from responder.models.runbook import Protected, Quota, Runbook
from responder.settings import Settings
from responder.timeline.archive import Archiver

log = structlog.get_logger(__name__)

NO_KAFKA = (
    "no Kafka configured: set RESPONDER_KAFKA_BOOTSTRAP=host:port (or kafka_bootstrap in the file named by "
    "RESPONDER_CONFIG), or run `responder run --sandbox` to start the embedded broker and a local AWS API"
)


def guards_from(settings: Settings) -> Guards:
    """The global guards configured in settings (a bad quota is a ConfigError at start-up)."""
    try:
        quotas = [Quota.model_validate(q) for q in settings.guard_quotas]
    except ValidationError as exc:
        raise ConfigError(f"RESPONDER_GUARD_QUOTAS: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from exc
    return Guards(GuardPolicy(
        quotas=quotas,
        max_targets=settings.guard_max_targets,
        protected=Protected(ids=settings.protected_ids, tags=settings.protected_tags),
        kill_switch=settings.kill_switch, kill_switch_file=settings.kill_switch_file,
        home=Home(account=settings.aws_account_id, region=settings.aws_region), models=config_from(settings),
    ))


def warn_account_unknown(settings: Settings, books: Iterable[Runbook]) -> None:
    """Warn, once at start-up, when protected ids pinned to an account (`arn:aws:iam::123456789012:…`, in the settings
    or a runbook) are matched in every account because `aws_account_id` is not set: the safe side (more protected,
    never less), but a pattern meant for another account then protects the same names here too."""
    if settings.aws_account_id:
        return
    ids = [*settings.protected_ids, *(i for rb in books for i in rb.guards.protected.ids)]
    pinned = sorted({i for i in ids if (parts := i.split(":", 5))[0].casefold() == "arn" and len(parts) == 6
                     and parts[4] not in ("", "*")})
    if pinned:
        log.warning("protected_ids_account_unknown", setting="RESPONDER_AWS_ACCOUNT_ID", patterns=pinned,
                    detail="protected ids pinned to an account are matched in every account until responder's own "
                           "is set (docs/security.md)")


def warn_unsigned_triggers(settings: Settings, books: Iterable[Runbook], registry: Registry) -> None:
    """Warn, once at start-up, when `require_signature` names sources or topics, not every record, and an acting
    runbook can still be triggered by an unsigned record: it matches by category (or by a source glob) a source the
    list leaves out (a GuardDuty finding wrapped as Security Hub or OCSF), or one a topic that requires nothing
    carries. Names each runbook with those sources (docs/security.md). Also warns (`runbook_signature_unsatisfiable`,
    since 2026-12-07) when a runbook sets `require_signature: true` and no `event_signing_keys` are configured: no
    record can be signed, so every record it matches is dead-lettered (`authentication`)."""
    books = list(books)
    if not settings.event_signing_keys and (signed := sorted(rb.id for rb in books if rb.require_signature)):
        log.warning("runbook_signature_unsatisfiable", setting="RESPONDER_EVENT_SIGNING_KEYS", runbooks=signed,
                    detail="these runbooks act on signed records only and no signing key is configured: every "
                           "record they match is dead-lettered (authentication); configure event_signing_keys or "
                           "drop `require_signature: true` (docs/security.md)")
    reach = unguarded(books, registry, settings.require_signature, settings.topics, settings.topic_formats)
    if reach:
        log.warning("signature_requirement_bypassable", setting="RESPONDER_REQUIRE_SIGNATURE",
                    require_signature=sorted(settings.require_signature), runbooks=reach,
                    unguarded_sources=sorted({s for found in reach.values() for s in found}),
                    detail="these acting runbooks act on unsigned records of the sources named: a signature "
                           "required per source guards only that source; require it per topic (every topic "
                           "consumed) or '*', or set `require_signature: true` in the runbook (docs/security.md)")


def approver_keys(settings: Settings) -> ApproverKeys:
    """The approval keys with the identities they stand for and the longest decision lifetime: what the engine
    accepts decisions with, and what `responder approvals pending` judges them with."""
    return ApproverKeys({k: v.get_secret_value() for k, v in settings.approval_keys.items()},
                        identities=settings.approver_identities, max_lifetime=settings.approval_decision_max_lifetime)


def authenticator_from(settings: Settings) -> RecordAuthenticator:
    """Record signature checks: the keys, where signatures are required, and which sources each key may sign."""
    unknown = sorted(set(settings.event_signing_key_sources) - set(settings.event_signing_keys))
    if unknown:
        raise ConfigError(f"RESPONDER_EVENT_SIGNING_KEY_SOURCES names keys that are not configured: {unknown}")
    return RecordAuthenticator({k: v.get_secret_value() for k, v in settings.event_signing_keys.items()},
                               settings.require_signature, settings.event_signing_key_sources)


def operator_permissions(settings: Settings) -> dict[str, list[str]]:
    """Which operator requests each approval key may send; naming a key that is no approval key (a typo: no request
    of it could verify) is a ConfigError, as the key that was meant would be refused everything."""
    unknown = sorted(set(settings.operator_permissions) - set(settings.approval_keys))
    if unknown:
        raise ConfigError(f"RESPONDER_OPERATOR_PERMISSIONS names keys that are not in RESPONDER_APPROVAL_KEYS: "
                          f"{unknown}")
    return {key: list(commands) for key, commands in settings.operator_permissions.items()}


def archiver_from(settings: Settings) -> Archiver | None:
    """The segment archiver, when an archive is configured (segments are sealed at signed checkpoints)."""
    archive = S3Archive.from_settings(settings)
    if archive is None:
        return None
    if not settings.timeline_signing_key:
        raise ConfigError("timeline_archive needs timeline_signing_key: segments are sealed at signed checkpoints")
    return Archiver(archive)


def refuse_notifying_own_topics(settings: Settings, books: Iterable[Runbook]) -> None:
    """ConfigError when a runbook's notify.kafka step (or escalation) publishes to one of the service's own topics:
    into an alert topic it would be read back as an alert, into the changelog it would stop that partition's
    restore, into the approval, operator or dead-letter topics it would pose as a decision, a request or a record
    to replay. Notification topics are literal (a `${…}` one is refused at load), so this is known at start."""
    own = {topic: setting for topic, setting in (
        *((t, "RESPONDER_TOPICS") for t in settings.topics),
        (settings.changelog_topic, "RESPONDER_CHANGELOG_TOPIC"),
        (settings.approvals_topic, "RESPONDER_APPROVALS_TOPIC"),
        (settings.approval_requests_topic, "RESPONDER_APPROVAL_REQUESTS_TOPIC"),
        (settings.operator_requests_topic, "RESPONDER_OPERATOR_REQUESTS_TOPIC"),
        (settings.operator_replies_topic, "RESPONDER_OPERATOR_REPLIES_TOPIC"),
        (settings.deadletter_topic, "RESPONDER_DEADLETTER_TOPIC"),
        (settings.timeline_mirror_topic, "RESPONDER_TIMELINE_MIRROR_TOPIC"),
    ) if topic}
    for needed in notification_topics(books):
        if needed.name in own:
            raise ConfigError(f"{needed.setting} publishes notifications to {needed.name!r}, which is the service's "
                              f"own topic ({own[needed.name]}): name a notification topic of its own")

