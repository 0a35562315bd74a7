"""Settings: `RESPONDER_*` environment variables, then an optional YAML file (`RESPONDER_CONFIG`).

Where the values are read from is `responder.settings_sources` (`SourcedSettings`), how a refused one is reported
`responder.settings_errors`; the first group of fields, the Kafka and fleet ones, is `responder.settings_kafka`; the
models of nested settings are in `responder.kafka_config` (`kafka_security`) and `responder.intake_config`
(`intake_sources`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from responder.intake_config import IntakeSource
from responder.settings_errors import SettingsInvalid, describe, problem
from responder.settings_kafka import KafkaSettings, below_group_timeouts
from responder.settings_keys import shared_keys
from responder.settings_sources import SourcedSettings

OperatorCommand = Literal["undo", "undo.force", "undo.destructive", "models.rollback", "models.switch",
                          "models.quarantine"]
"""What `operator_permissions` may grant: an action, or for undo, `--force` / `--allow-destructive` as well."""


class Settings(SourcedSettings, KafkaSettings):
    """Everything the service reads at start-up."""

    model_config = SettingsConfigDict(env_prefix="RESPONDER_", env_nested_delimiter="__", extra="forbid")

    runbooks_dir: Path = Field(default=Path("runbooks"), description="runbook directory (subdirectories included)")
    default_on_failure: list[dict[str, Any]] = Field(
        default_factory=list,
        description="escalation steps, written as a runbook's on_failure block (JSON list), run for a failure in a "
                    "runbook that has none, checked against every such runbook at start-up; without it (or when it "
                    "cannot tell anyone) a failure is recorded as escalation.missed and counted in "
                    "responder_escalation_failures_total (docs/runbooks.md)")
    timeline_path: Path = Field(default=Path(".responder/timeline.jsonl"), description="the timeline file")
    timeline_linger_ms: float = Field(
        default=1.0, ge=0, description="how long a flush waits for more appends to share its fdatasync (group commit)")
    timeline_signing_key: SecretStr | None = Field(
        default=None, description="base64 Ed25519 private key (`responder timeline keygen`); unset = no checkpoints")
    timeline_verify_key: str | None = Field(
        default=None, description="base64 Ed25519 public key(s) for `timeline verify`; comma-separated to rotate")
    timeline_checkpoint_every: int = Field(default=1000, ge=1, description="checkpoint after this many entries")
    timeline_checkpoint_interval: float = Field(default=10.0, gt=0, description="or after this many seconds")
    timeline_archive: str | None = Field(
        default=None, description="s3://bucket/prefix/ for sealed segments (needs a signing key)")
    timeline_archive_retention_days: int = Field(
        default=365, ge=1, description="Object Lock COMPLIANCE retention of each archived segment")
    timeline_mirror_topic: str | None = Field(default=None, description="Kafka topic mirroring every entry")
    timeline_mirror_max_pending: int = Field(
        default=100_000, ge=1, description="most timeline lines waiting for the mirror (a broker down for hours); "
                                           "past it the oldest are dropped from the mirror, never from the file")
    timeline_writers: list[str] = Field(
        default_factory=list, description="the fleet's replicas, each the host part of its timeline writer id "
                                          "(`host` of `host:pid`, e.g. the pod names): `timeline verify` of their "
                                          "files reports a missing or unexpected one (exit 1); empty = not checked")

    aws_region: str = Field(default="us-east-1", description="region for actuators")
    aws_endpoint_url: str | None = Field(default=None, description="e.g. a moto server; unset or empty = real AWS")
    aws_access_key_id: SecretStr | None = Field(
        default=None, description="explicit credentials (with the secret key); unset = the standard boto3 chain")
    aws_secret_access_key: SecretStr | None = Field(default=None, description="goes with aws_access_key_id")
    aws_call_timeout: float = Field(
        default=20.0, gt=0,
        description="deadline in seconds of one AWS API call, its wait for one of its service's 10 threads included; "
                    "in fleet mode below the rebalance timeout and the poll interval (docs/fleet.md, \"Deadlines\")")
    verify_settle_s: float = Field(
        default=5.0, ge=0, le=60, allow_inf_nan=False,
        description="seconds a runbook step's false verify() read-back is read again (after 0.5, 1, 2… s) before the "
                    "step is escalated as unverified: AWS reads lag a change for a few seconds (IAM, EC2, S3); "
                    "only a false read-back waits, after the step's timeout; 0 = read once (docs/engine.md)")
    aws_account_id: str | None = Field(
        default=None, pattern=r"^[0-9]{12}$", examples=["123456789012"],
        description="responder's own account: the generated IAM policy is scoped to it, and protected "
                    "ids pinned to an account are matched in it (unset: in any account, and start-up "
                    "warns, protected_ids_account_unknown); a step on an event about another account, "
                    "or naming another account's ARN, is refused (the account guard; unset: only an ARN "
                    "of another account than the event's); 12 ASCII digits, and an event account that "
                    "is not (a GCP project) is unknown, not another; `run --sandbox` and `demo` use the "
                    "sandbox's own, logging sandbox_account_replaced when they replace one (docs/security.md)")
    self_principal_arns: list[str] = Field(
        default_factory=list, description="responder's own role/user ARNs: `iam-policy` denies changing them or their "
                                          "keys")
    self_policy_arns: list[str] = Field(
        default_factory=list, description="managed policies attached to responder: `iam-policy` denies changing them")
    self_kms_key_arns: list[str] = Field(
        default_factory=list, description="responder's own KMS keys (timeline, secrets): `iam-policy` denies "
                                          "disabling or re-policing them")

    notify_keys: dict[str, SecretStr] = Field(
        default_factory=dict, description="HMAC secrets by key id for notify.webhook / notify.kafka signatures (no "
                                          "secret of another key ring: exit 3)")
    model_registry: str = Field(
        default=".responder/models", description="model registry: a directory, s3://BUCKET/PREFIX or sagemaker+s3://…"
    )
    model_trusted_keys: list[Path] = Field(
        default_factory=list, description="PEM public keys (paths) a model version must be signed by to be served"
    )
    model_accept_legacy_signatures: bool = Field(
        default=False, description="serve versions whose signature does not name their model and version (signed "
        "before release statements; logged as a warning): a migration aid, off by default")
    model_refuse_legacy_signatures: bool = Field(
        default=False, description="the step after `models resign`: integrity checks (`models check`, alert "
        "corroboration) fail on a legacy signature instead of warning; off by default")
    model_ssm_prefix: str = Field(
        default="/responder/models", description="SSM parameter prefix of the S3 registry's serving pointers")
    model_deploy_poll_s: float = Field(
        default=5.0, gt=0, description="seconds between status reads while a SageMaker endpoint update rolls out")
    model_deploy_timeout_s: float = Field(
        default=600.0, gt=0, description="how long a SageMaker switch may take to reach InService")

    dry_run: bool = Field(default=False, description="plan every step, call no actuator (`run --dry-run`)")
    kill_switch: bool = Field(default=False, description="every step needs a human approval")
    kill_switch_file: Path | None = Field(
        default=None, description="the kill switch is on while this file exists (checked on every step)")
    guard_max_targets: int | None = Field(default=None, ge=1, description="global max distinct targets per plan")
    guard_quotas: list[dict[str, Any]] = Field(default_factory=list,
                                               description='global quotas: [{"actuator": "aws.iam.*", "max": 5, '
                                                           '"window": "15m"}]')
    protected_ids: list[str] = Field(
        default_factory=list, description="ids, names, path forms or ARNs (globs, case-insensitive) never touched, "
                                          'e.g. ["arn:aws:iam::*:role/Break*"]')
    protected_tags: dict[str, str] = Field(
        default_factory=dict, description='resources carrying these tags are never touched ("*" = any value); read '
                                          "through AWS on each resource a step acts on (no reader: refused)")
    approvals_topic: str = Field(default="responder.approvals", description="where approval decisions arrive")
    approval_requests_topic: str = Field(
        default="responder.approvals.requests", description="where parked steps publish their approval requests")
    operator_requests_topic: str = Field(
        default="responder.operator.requests",
        description="where signed operator requests (undo, models rollback|switch|quarantine --via kafka) arrive")
    operator_replies_topic: str = Field(
        default="responder.operator.replies", description="where the service answers operator requests")
    operator_reply_timeout: float = Field(
        default=60.0, gt=0, description="seconds a `--via kafka` command waits for the service's answer")
    operator_unverified_replies: bool = Field(
        default=False, description="let `--via kafka` accept a reply it cannot verify (no timeline_verify_key), "
                                   "printed as UNVERIFIED; otherwise such a command is refused before it is sent")
    operator_permissions: dict[str, list[OperatorCommand]] = Field(
        default_factory=dict, examples=['\'{"ops": ["undo", "models.rollback"]}\''],
        description="approval key id → the operator requests it may send (undo, undo.force, undo.destructive, "
                    "models.rollback|switch|quarantine); unset = every operator request is refused")
    approval_keys: dict[str, SecretStr] = Field(
        default_factory=dict, description='HMAC keys for decisions, {"key-id": "secret"}; several at once to rotate. '
                                          "No secret of another key ring, no id of event_signing_keys: exit 3")
    approval_key_id: str | None = Field(default=None, description="the key `responder approve/deny` signs with")
    approval_decision_ttl: float = Field(
        default=900.0, gt=0, description="seconds a decision or operator request sent by the CLI stays valid; at "
        "most approval_decision_max_lifetime less a minute (or a tenth of it): set above, exit 3; by default lowered")
    approver_identities: dict[str, str] = Field(
        default_factory=dict, description="approval key id → the person or team it belongs to; `by` must equal it, "
                                          "and only a bound key can satisfy a step's `approvers`")
    approval_decision_max_lifetime: float = Field(
        default=3600.0, gt=0, description="longest a decision (expires_at - now) or an operator request "
                                          "(expires_at - issued_at) may stay valid, in seconds")
    log_format: Literal["json", "console"] = Field(default="json", description="log renderer")
    log_level: str = Field(
        default="info", description="debug, info, warning, error or critical; an unknown name means info")
    metrics_port: int | None = Field(
        default=None, ge=0, le=65535, description="serve /metrics, /healthz, /readyz; unset = off")
    metrics_host: str = Field(default="127.0.0.1", description="interface for /metrics, /healthz, /readyz")

    topic_formats: dict[str, str] = Field(
        default_factory=dict,
        description='topic → format, family or event source, e.g. {"trail.raw": "cloudtrail"} ("ocsf" also takes '
                    'Findings Imported V2); other topics: by shape',
    )
    event_signing_keys: dict[str, SecretStr] = Field(
        default_factory=dict, description="HMAC key id → secret for signed records; several at once for rotation. No "
                                          "secret of another key ring and no id of approval_keys: exit 3")
    event_signing_key_sources: dict[str, list[str]] = Field(
        default_factory=dict, description="key id → event sources (globs) it may sign; a key not listed signs any")
    require_signature: list[str] = Field(
        default_factory=list, description="topics or event sources whose records must be signed; '*' = all. A source "
        "guards only events of that source, not the same finding in another source's form (Security Hub, OCSF): "
        "prefer '*' or every consumed topic (start-up warns, signature_requirement_bypassable, when an acting "
        "runbook can match a source left out)"
    )

    otel_exporter_otlp_endpoint: str | None = Field(
        default=None, description="OTLP/HTTP traces endpoint (http://collector:4318/v1/traces); unset = no export")
    intake_host: str = Field(default="127.0.0.1", description="interface `responder intake` listens on")
    intake_port: int = Field(default=8080, ge=0, le=65535, description="port `responder intake` listens on")
    intake_topic: str = Field(default="security.alerts", description="topic the intake produces to")
    intake_sources: dict[str, IntakeSource] = Field(
        default_factory=dict, description='source → {"auth": ..., "keys": {...}}; a source without auth is refused; '
                                          "no secret of another key ring (exit 3)")
    intake_signing_key_id: str | None = Field(
        default=None, description="event_signing_keys id the intake signs produced records with")
    intake_max_body_bytes: int = Field(default=1024 * 1024, ge=1024, description="larger bodies get 413")
    intake_max_depth: int = Field(default=32, ge=2, description="deeper JSON nesting gets 400")
    intake_read_timeout_s: float = Field(
        default=10.0, gt=0, description="the request head, then the body, each within this or 408 (closed)")
    intake_max_connections: int = Field(
        default=512, ge=1, description="open intake connections at most; one more is answered 503 and closed")
    intake_send_timeout_s: float = Field(default=10.0, gt=0, description="no broker ack after this = 503")
    intake_dedupe_ttl_s: float = Field(default=86_400.0, gt=0, description="how long a delivery id is remembered")
    intake_dedupe_max: int = Field(
        default=200_000, ge=1, description="delivery entries remembered at most (a Standard Webhooks delivery takes "
                                           "one for its id and one per record)")

    def __init__(self, **values: Any) -> None:
        """Validate; every invalid setting is one line of a SettingsInvalid (a ConfigError: exit 3)."""
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise SettingsInvalid(describe(exc, type(self).model_fields)) from None

    @field_validator("aws_endpoint_url", mode="before")
    @classmethod
    def _empty_endpoint_is_real_aws(cls, url: object) -> object:
        """`RESPONDER_AWS_ENDPOINT_URL=` (empty, as compose passes a variable it was told to) means real AWS."""
        return None if isinstance(url, str) and not url.strip() else url

    @field_validator("aws_call_timeout")
    @classmethod
    def _aws_call_below_the_group_timeouts(cls, timeout: float, info: ValidationInfo) -> float:
        """In fleet mode a step's AWS call that may take longer than the group waits for the replica holds its chunk
        past its place in the group (its partitions move while it acts; docs/fleet.md, "Deadlines")."""
        return below_group_timeouts(timeout, info, "an AWS call")

    @model_validator(mode="after")
    def _settings_agree(self) -> Settings:
        """In fleet mode a rebalance timeout or poll interval not above the largest fixed bound (a transaction's
        commit, a dead letter's resends…) moves a partition while the replica still waits on it; a secret in two key
        rings, or an id in both rings a record's header names, lets one role sign as another (settings_keys.py): one
        line each, never a secret, exit 3."""
        found = [*self.group_timeouts_too_short(),
                 *shared_keys(self.approval_keys, self.event_signing_keys, self.notify_keys, self.intake_sources)]
        if found:
            fields = type(self).model_fields
            raise SettingsInvalid([problem(name, fields[name], getattr(self, name), why) for name, why in found])
        return self

    @field_validator("model_refuse_legacy_signatures")
    @classmethod
    def _legacy_signatures(cls, refuse: bool, info: ValidationInfo) -> bool:
        """Serving legacy-signed versions and failing integrity checks on them contradict each other."""
        if refuse and info.data.get("model_accept_legacy_signatures"):
            raise ValueError("model_accept_legacy_signatures is set too: accept is the migration aid, refuse the "
                             "step after it; set at most one")
        return refuse

    def notify_secrets(self) -> dict[str, bytes]:
        """The notify signing secrets as bytes, by key id."""
        return {k: v.get_secret_value().encode() for k, v in self.notify_keys.items()}

    def aws_credentials(self) -> dict[str, str]:
        """Explicit credentials when configured; otherwise the standard chain applies."""
        if self.aws_access_key_id and self.aws_secret_access_key:
            return {
                "aws_access_key_id": self.aws_access_key_id.get_secret_value(),
                "aws_secret_access_key": self.aws_secret_access_key.get_secret_value(),
            }
        return {}
