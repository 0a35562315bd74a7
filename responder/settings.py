"""Settings: `RESPONDER_*` environment variables, then an optional YAML file (`RESPONDER_CONFIG`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from responder.settings_errors import EnvSource, SettingsInvalid, describe


class Settings(BaseSettings):
    """Everything the service reads at start-up."""

    model_config = SettingsConfigDict(env_prefix="RESPONDER_", env_nested_delimiter="__", extra="forbid")

    kafka_bootstrap: str | None = Field(default=None, description="host:port[,host:port]; unset = no Kafka")
    topics: list[str] = Field(default_factory=lambda: ["security.alerts", "ml.drift"])
    group_id: str = "responder"
    deadletter_topic: str = "responder.deadletter"
    session_timeout_ms: int = 10_000
    kafka_connect_timeout: float = Field(
        default=30.0, gt=0, description="seconds to keep retrying to reach Kafka before giving up (exit 3)")
    max_record_bytes: int = 1024 * 1024
    max_batch: int = 500
    kafka_manual_assignment: bool = Field(
        default=False, description="own every partition without group membership (one instance; no rebalances)")

    runbooks_dir: Path = Path("runbooks")
    timeline_path: Path = Path(".responder/timeline.jsonl")
    timeline_linger_ms: float = 1.0
    timeline_signing_key: SecretStr | None = Field(
        default=None, description="base64 Ed25519 private key (`responder timeline keygen`); unset = no checkpoints")
    timeline_verify_key: str | None = Field(default=None, description="base64 Ed25519 public key for verify")
    timeline_checkpoint_every: int = Field(default=1000, ge=1, description="checkpoint after this many entries")
    timeline_checkpoint_interval: float = Field(default=10.0, gt=0, description="or after this many seconds")
    timeline_archive: str | None = Field(default=None, description="s3://bucket/prefix/ for sealed segments")
    timeline_archive_retention_days: int = Field(default=365, ge=1)
    timeline_mirror_topic: str | None = Field(default=None, description="Kafka topic mirroring every entry")

    aws_region: str = "us-east-1"
    aws_endpoint_url: str | None = None
    aws_access_key_id: SecretStr | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_call_timeout: float = 20.0

    notify_keys: dict[str, SecretStr] = Field(
        default_factory=dict, description="HMAC secrets by key id for notify.webhook / notify.kafka signatures"
    )
    model_registry: str = Field(
        default=".responder/models", description="model registry: a directory, s3://BUCKET/PREFIX or sagemaker+s3://…"
    )
    model_trusted_keys: list[Path] = Field(
        default_factory=list, description="PEM public keys a model version must be signed by to be served"
    )
    model_ssm_prefix: str = "/responder/models"
    model_deploy_poll_s: float = 5.0
    model_deploy_timeout_s: float = 600.0

    dry_run: bool = False
    kill_switch: bool = Field(default=False, description="every step needs a human approval")
    kill_switch_file: Path | None = Field(default=None, description="kill switch is on while this file exists")
    guard_max_targets: int | None = Field(default=None, ge=1, description="global max distinct targets per plan")
    guard_quotas: list[dict[str, Any]] = Field(default_factory=list,
                                               description='global quotas: [{"actuator": "aws.iam.*", "max": 5, '
                                                           '"window": "15m"}]')
    protected_ids: list[str] = Field(default_factory=list, description="ids/ARNs/names (globs) never touched")
    protected_tags: dict[str, str] = Field(default_factory=dict, description="tags whose resources are never touched")
    approvals_topic: str = "responder.approvals"
    approval_requests_topic: str = "responder.approvals.requests"
    approval_keys: dict[str, SecretStr] = Field(default_factory=dict, description="key id → HMAC secret")
    approval_key_id: str | None = Field(default=None, description="key the CLI signs decisions with")
    approval_decision_ttl: float = Field(default=900.0, gt=0, description="seconds a decision stays valid")
    log_format: Literal["json", "console"] = "json"
    log_level: str = "info"
    metrics_port: int | None = None
    metrics_host: str = Field(default="127.0.0.1", description="interface for /metrics, /healthz, /readyz")

    topic_formats: dict[str, str] = Field(
        default_factory=dict, description="topic → format or family (e.g. cloudtrail); unset topics: by shape"
    )
    event_signing_keys: dict[str, SecretStr] = Field(
        default_factory=dict, description="HMAC key id → secret for signed records; several at once for rotation"
    )
    require_signature: list[str] = Field(
        default_factory=list, description="topics or event sources whose records must be signed; '*' = all"
    )

    def __init__(self, **values: Any) -> None:
        """Validate; every invalid setting is one line of a SettingsInvalid (a ConfigError: exit 3)."""
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise SettingsInvalid(describe(exc, type(self).model_fields)) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Init kwargs win, then env (lists may be comma-separated), then the YAML file named by RESPONDER_CONFIG."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, EnvSource(settings_cls)]
        config = os.environ.get("RESPONDER_CONFIG")
        if config:
            if not Path(config).is_file():
                raise SettingsInvalid([f"RESPONDER_CONFIG={config!r}: no such file "
                                       "(example: RESPONDER_CONFIG=/etc/responder/responder.yaml)"])
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config))
        return tuple(sources)

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
