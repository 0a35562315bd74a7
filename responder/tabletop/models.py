"""The playbook file: one scripted incident, its sandbox world, injects, decisions, faults and expectations.

Unknown keys are rejected everywhere (`extra="forbid"`). Durations are seconds or `90s`/`5m`/`2h`.
Strings of the form `${world.<kind>.<name>[.<attr>]}` or `${now}` in inject overrides are bound
at run time to the ids the sandbox issued (they are references, never templates).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, JsonValue, model_validator

from responder.models.runbook import Duration
from responder.tabletop.expectations import Expectation

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$"
REF = re.compile(r"^\$\{(now(?:_ms)?|world\.[a-z_]+\.[A-Za-z0-9_.:/-]+?(?:\.(?:id|arn|name))?)\}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _names(v: Any) -> Any:
    return [v] if isinstance(v, str) else v


Names = Annotated[list[str], BeforeValidator(_names)]


class User(_Strict):
    """An IAM user; each key name becomes an access key, referable as ${world.keys.<name>}."""

    name: str = Field(pattern=NAME)
    keys: list[str] = Field(default_factory=list, max_length=2)
    policies: dict[str, JsonValue] = Field(default_factory=dict, description="inline policy name → document")


class Role(_Strict):
    """An IAM role (trust policy defaults to EC2)."""

    name: str = Field(pattern=NAME)
    policies: dict[str, JsonValue] = Field(default_factory=dict)


class Instance(_Strict):
    """An EC2 instance with tags and named security groups (created in the default VPC)."""

    name: str = Field(pattern=NAME)
    tags: dict[str, str] = Field(default_factory=dict)
    security_groups: list[str] = Field(default_factory=lambda: ["web"])


class Endpoint(_Strict):
    """A SageMaker model + endpoint config + endpoint named `name`, invoked by `invokers` (role names)."""

    name: str = Field(pattern=NAME)
    invokers: list[str] = Field(default_factory=list)


class ApiKey(_Strict):
    """An API Gateway key; its id is ${world.api_keys.<name>}."""

    name: str = Field(pattern=NAME)


class Function(_Strict):
    """A Lambda function."""

    name: str = Field(pattern=NAME)


class Secret(_Strict):
    """A Secrets Manager secret with its current value."""

    name: str = Field(pattern=NAME)
    value: str = "initial-secret-value"


class KmsKey(_Strict):
    """A KMS key; its id is ${world.kms_keys.<name>}."""

    name: str = Field(pattern=NAME)


class Bucket(_Strict):
    """An S3 bucket; `public: true` leaves public access unblocked."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{2,62}$")
    public: bool = True


class Trail(_Strict):
    """A CloudTrail trail (logging to its own bucket); `logging: false` = an attacker already stopped it."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{2,127}$")
    logging: bool = True


class VersionState(StrEnum):
    """How a registry version is published."""

    SIGNED = "signed"
    UNSIGNED = "unsigned"
    TAMPERED = "tampered"  # signed, then its weights changed


class ModelVersion(_Strict):
    """One version in the model registry."""

    version: str = Field(pattern=NAME)
    state: VersionState = VersionState.SIGNED


class Model(_Strict):
    """A model in the local registry, its versions in publication order and the one being served."""

    name: str = Field(pattern=NAME)
    versions: list[ModelVersion] = Field(min_length=1)
    serving: str

    @model_validator(mode="after")
    def _serving_known(self) -> Model:
        if self.serving not in {v.version for v in self.versions}:
            raise ValueError(f"serving {self.serving!r} is not one of the versions")
        return self


class World(_Strict):
    """Sandbox resources created in moto (and the local model registry) before the first inject."""

    users: list[User] = Field(default_factory=list)
    roles: list[Role] = Field(default_factory=list)
    instances: list[Instance] = Field(default_factory=list)
    endpoints: list[Endpoint] = Field(default_factory=list)
    api_keys: list[ApiKey] = Field(default_factory=list)
    functions: list[Function] = Field(default_factory=list)
    secrets: list[Secret] = Field(default_factory=list)
    kms_keys: list[KmsKey] = Field(default_factory=list)
    buckets: list[Bucket] = Field(default_factory=list)
    trails: list[Trail] = Field(default_factory=list)
    models: list[Model] = Field(default_factory=list)
    protected: list[str] = Field(default_factory=list, description="world names or ids never to be touched")

    def names(self) -> dict[str, set[str]]:
        """Every referable name by kind (`keys` are the users' access-key names)."""
        return {
            "users": {u.name for u in self.users}, "keys": {k for u in self.users for k in u.keys},
            "roles": {r.name for r in self.roles} | {i for e in self.endpoints for i in e.invokers},
            "instances": {i.name for i in self.instances},
            "security_groups": {g for i in self.instances for g in i.security_groups} | {"quarantine"},
            "endpoints": {e.name for e in self.endpoints}, "api_keys": {a.name for a in self.api_keys},
            "functions": {f.name for f in self.functions}, "secrets": {s.name for s in self.secrets},
            "kms_keys": {k.name for k in self.kms_keys}, "buckets": {b.name for b in self.buckets},
            "trails": {t.name for t in self.trails},
            "models": {m.name for m in self.models},
        }


class ScenarioSettings(_Strict):
    """The settings a scenario may override (everything else is wired by the runner)."""

    guard_quotas: list[dict[str, JsonValue]] = Field(default_factory=list)
    guard_max_targets: int | None = Field(default=None, ge=1)
    protected_tags: dict[str, str] = Field(default_factory=dict)
    require_signature: list[str] = Field(default_factory=list, description="'alerts' = the scenario's alert topic")
    event_signing_keys: dict[str, str] = Field(default_factory=dict, description="key id → secret")
    approval_keys: dict[str, str] = Field(default_factory=lambda: {"tabletop": "tabletop-approval-secret"})
    approval_decision_ttl: float = Field(default=900.0, gt=0)
    kill_switch: bool = False
    dry_run: bool = False


class Signature(StrEnum):
    """How an inject is signed."""

    UNSIGNED = "unsigned"
    SIGNED = "signed"  # with the first event signing key
    FORGED = "forged"  # a known key id with a wrong signature


class WebhookAuth(StrEnum):
    """How a webhook inject authenticates to the intake (docs/intake.md)."""

    STANDARD_WEBHOOKS = "standard-webhooks"
    BEARER = "bearer"
    URL_TOKEN = "url-token"  # noqa: S105  # nosec B105 - an auth scheme name, not a token


class Inject(_Strict):
    """One record delivered to the service."""

    id: str = Field(pattern=NAME)
    at: Duration | None = Field(default=None, description="virtual offset from the start")
    after: str | None = Field(default=None, description="another inject's id, or an expectation's id (fires once "
                              "that expectation is first met); `at` is then the delay after it")
    transport: Literal["kafka", "webhook"] = Field(
        default="kafka", description="kafka: produced to the topic; webhook: POSTed to a real `responder intake`")
    auth: WebhookAuth = Field(default=WebhookAuth.BEARER, description="webhook only: how the sender authenticates")
    topic: Literal["alerts", "drift"] = "alerts"
    event: str = Field(description="event file, relative to the playbook")
    overrides: dict[str, JsonValue] = Field(default_factory=dict, description="dotted path → value or ${ref}")
    signature: Signature = Field(default=Signature.UNSIGNED, description="kafka: the record's signature; webhook: "
                                 "forged = a wrong secret (the intake refuses it), else the intake signs")
    key: str | None = Field(default=None, description="record key (default: none)")
    repeat: int = Field(default=1, ge=1, le=1000, description="distinct copies (each gets its own event id)")
    every: Duration = Field(default=0, description="virtual spacing between repeats")
    unique: list[str] = Field(default_factory=list, description="dotted paths made unique per repeat")
    vary: dict[str, list[JsonValue]] = Field(default_factory=dict,
                                             description="dotted path → values; repeat n takes value n mod len")
    duplicate: bool = Field(default=False, description="deliver each record twice (at-least-once redelivery)")
    reverse: bool = Field(default=False, description="deliver the repeats newest first (out of order)")

    @model_validator(mode="after")
    def _webhook_fields(self) -> Inject:
        if self.transport == "webhook" and (self.topic != "alerts" or self.key is not None):
            raise ValueError("a webhook inject goes to the alert topic, keyed by the intake: drop `topic`/`key`")
        return self


class Tamper(StrEnum):
    """Ways a decision can be wrong."""

    NONE = "none"
    FORGED = "forged"
    EXPIRED = "expired"
    WRONG_DIGEST = "wrong_digest"


class Decision(_Strict):
    """A human's answer to a parked step, delivered signed on the approvals topic."""

    at: Duration
    step: str
    target: str | None = Field(default=None, description="world name (or id) of the parked step's target")
    decision: Literal["approve", "deny"]
    by: str = "tabletop-approver"
    key: str = "tabletop"
    tamper: Tamper = Tamper.NONE


class AwsFault(_Strict):
    """An AWS API answering with an error for a span of virtual time."""

    service: str
    operation: str = Field(description="API name as in CloudTrail, e.g. UpdateAccessKey")
    error: Literal["throttle", "5xx"] = "throttle"
    start: Duration = 0
    end: Duration = 3600
    times: int | None = Field(default=None, ge=1, description="fail only the first N calls in the span")


class KillFault(_Strict):
    """SIGKILL the service process, then restart it: while it calls `kill_during`, or at virtual time `kill_at`."""

    kill_during: str | None = Field(default=None, description="API name, e.g. UpdateAccessKey (the call never "
                                    "reaches AWS)")
    kill_at: Duration | None = Field(default=None, description="virtual offset: killed once everything before it "
                                     "has been handled (open incidents, parked approvals, unfinished windows)")

    @model_validator(mode="after")
    def _one_trigger(self) -> KillFault:
        if (self.kill_during is None) == (self.kill_at is None):
            raise ValueError("a kill fault has exactly one of `kill_during` and `kill_at`")
        return self


class Playbook(_Strict):
    """One tabletop scenario."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str
    objectives: list[str] = Field(min_length=1)
    threat: Names = Field(default_factory=list, description="MITRE ATT&CK / ATLAS technique ids")
    description: str = ""
    discussion: list[str] = Field(default_factory=list)
    timeout: float = Field(default=60.0, gt=0, le=600, description="wall seconds before the run is stopped")
    world: World = Field(default_factory=World)
    settings: ScenarioSettings = Field(default_factory=ScenarioSettings)
    injects: list[Inject] = Field(min_length=1)
    decisions: list[Decision] = Field(default_factory=list)
    faults: list[AwsFault | KillFault] = Field(default_factory=list)
    expectations: list[Expectation] = Field(min_length=1)
