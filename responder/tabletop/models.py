"""The playbook file: one scripted incident, its sandbox world, injects, decisions, faults and expectations.

Unknown keys are rejected everywhere (`extra="forbid"`). Durations are seconds or `90s`/`5m`/`2h`.
Strings of the form `${world.<kind>.<name>[.<attr>]}` or `${now}` in inject overrides are bound
at run time to the ids the sandbox issued (they are references, never templates).

The world's models (`World`, its resources `User` ... `Trail`, and the registry's `Model`, `ModelVersion`,
`VersionState`) are in `responder.tabletop.resources` (re-exported here); this module keeps the playbook
itself: settings, injects, decisions, faults and `Playbook`.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, JsonValue, model_validator

from responder.models.runbook import Duration
from responder.tabletop.expectations import Expectation
from responder.tabletop.resources import (
    NAME,
    ApiKey,
    Bucket,
    Endpoint,
    Function,
    Instance,
    KmsKey,
    Model,
    ModelVersion,
    Role,
    Secret,
    Trail,
    User,
    VersionState,
    World,
    _Strict,
)

__all__ = ["NAME", "REF", "ApiKey", "AwsFault", "Bucket", "Decision", "DefaultEscalation", "Endpoint", "Function",
           "Inject", "Instance", "KillFault", "KmsKey", "Model", "ModelVersion", "Names", "Playbook", "Role",
           "ScenarioSettings", "Secret", "Signature", "Tamper", "Trail", "User", "VersionState", "WebhookAuth", "World"]

REF = re.compile(r"^\$\{(now(?:_ms)?|world\.[a-z_]+\.[A-Za-z0-9_.:/-]+?(?:\.(?:id|arn|name))?)\}$")


def _names(v: Any) -> Any:
    return [v] if isinstance(v, str) else v


Names = Annotated[list[str], BeforeValidator(_names)]


class DefaultEscalation(StrEnum):
    """Which `default_on_failure` a drill's service gives the runbooks without `on_failure`."""

    SERVICE = "service"  # the setting `responder run` reads (RESPONDER_DEFAULT_ON_FAILURE, RESPONDER_CONFIG)
    NONE = "none"  # no default: such a runbook's failure is `escalation.missed` (what if nobody is configured)


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
    default_on_failure: DefaultEscalation = Field(
        default=DefaultEscalation.SERVICE, description="service: the service's default_on_failure setting, as "
        "production; none: no default, so a runbook without on_failure escalates to nobody (escalation.missed)")


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
