"""The actuator contract: a self-describing, idempotent, verifiable side effect."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue

P = TypeVar("P", bound=BaseModel)


class Params(BaseModel):
    """Base of every actuator's params model: frozen, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)


class AwsCaller(Protocol):
    """What actuators use to reach AWS (implemented in actuators.aws.session)."""

    async def call(self, service: str, operation: str, **kwargs: Any) -> dict[str, Any]: ...


class Publisher(Protocol):
    """Sends one record and waits for its ack (the service's Kafka producer, in responder.ingest.approvals).

    The one publisher protocol: notify.kafka publishes through it, and the engine publishes approval
    requests through it, so the service injects one producer for both.
    """

    async def publish(self, topic: str, key: bytes, value: bytes,
                      headers: Sequence[tuple[str, bytes]] = ()) -> None: ...


@dataclass(frozen=True)
class ModelConfig:
    """Where the model registry is and which public keys are trusted (from settings, never from an event).

    The `models` collaborator of the context, read by the model.* actuators (responder/actuators/model/backends.py
    builds it from settings and opens the registry it names).
    """

    registry: str = ".responder/models"
    trusted_keys: Sequence[Path] = field(default_factory=tuple)
    ssm_prefix: str = "/responder/models"
    poll_interval: float = 5.0
    deploy_timeout: float = 600.0
    accept_legacy: bool = False
    refuse_legacy: bool = False
    drill: bool = False  # a tabletop drill's service: a step's literal local registry is `registry` (`registry_url`)


@dataclass(frozen=True)
class ActuationContext:
    """What an actuator may use: the cloud, the incident it acts for, its idempotency key, and collaborators.

    `publisher` is for notify.kafka, `webhook_keys` (key id to HMAC secret bytes) signs notify.webhook and
    notify.kafka records, `models` is the model registry configuration for the model.* actuators
    (read from settings when absent).
    """

    aws: AwsCaller
    incident: str = ""
    key: str = ""
    publisher: Publisher | None = None
    webhook_keys: Mapping[str, bytes] = field(default_factory=dict)
    models: ModelConfig | None = None

    def for_step(self, incident: str, key: str) -> ActuationContext:
        """The same collaborators, acting for one incident under one idempotency key.

        A copy of the fields with two of them set, without `dataclasses.replace`, which runs `__init__` over
        every field (7x the cost, once per step); the collaborators are shared, as with `replace`.
        """
        ctx = object.__new__(type(self))
        ctx.__dict__.update(self.__dict__, incident=incident, key=key)
        return ctx


class ActuationResult(BaseModel):
    """What `apply` did: whether it changed anything, and the state before and after."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    changed: bool
    target: str
    # factories, not `= {}`: pydantic deep-copies a mutable default on every instance (~25 us per result)
    prior: dict[str, JsonValue] = Field(default_factory=dict)
    after: dict[str, JsonValue] = Field(default_factory=dict)
    outputs: dict[str, JsonValue] = Field(default_factory=dict)
    outputs_rebuilt: bool | None = None
    """Set by a settle only, never by `apply`: the reply that carried the outputs was lost, and they were rebuilt
    from a read of the target (`Actuator.outputs_now`: True) or could not be (False)."""
    outputs_lost: list[str] | None = None
    """Set with `outputs_rebuilt`: the declared outputs whose values are not known (a later step reading one fails)."""


class PlanPreview(BaseModel):
    """What `plan` says it would do, with no side effect."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    target: str
    summary: str


class Actuator(Generic[P]):
    """Subclass, set the class attributes, implement the three methods, then `@register`.

    `apply` must be desired-state (set, never toggle), capture the prior state so `reverse`
    can restore it, and be safe to call again. `verify` reads the post-condition back.
    """

    name: ClassVar[str]
    params: ClassVar[type[BaseModel]]
    permissions: ClassVar[tuple[str, ...]]
    destructive: ClassVar[bool] = False
    notifies: ClassVar[bool] = False
    """Whether the actuator only tells a human (acts on no cloud resource): the protected-id/tag and IAM-name guards,
    which keep automation off a resource, do not refuse it, so the page of a refused containment naming a protected
    id is delivered; quotas, the kill switch and approvals still hold it."""
    changes_in_turn: ClassVar[bool] = False
    """Whether `apply` makes several changes in turn (one call per role, network interface or volume; a key deleted
    before another is created), so that a failure part-way may leave some made: it raises PartialActuationError
    naming them (`responder.actuators.partial.Partly`), and a permanent failure after a transient one is recorded as
    one that may have changed something (docs/security.md). Never refunded from its quota in either case."""
    reverse: ClassVar[str | None] = None
    observes_prior: ClassVar[bool] = True
    """Whether the step runner reads `observe()` before the first attempt and records it as the prior state (one more
    read per step). False where `apply` reads the prior state itself and `observe()` is there for undo's
    compare-and-set (and the after-state of a step settled by `verify()` after a lost reply) only: no read is added
    to the step's path (docs/engine.md)."""
    irreversible: ClassVar[str] = ""
    """Why there is no reverse actuator (required when `reverse` is None)."""
    literal_params: ClassVar[tuple[str, ...]] = ()
    """Params a runbook must write as literals: a `${…}` placeholder in them is rejected at load."""
    not_identifiers: ClassVar[tuple[str, ...]] = ()
    """Params that name nothing the step acts on (free text, a policy document, a cutoff, a policy name of responder's
    own): the protected-id guard does not read them as forms of its target (docs/security.md). Never one that chooses
    a resource a protected id could name (a restore's policy name only picks one of responder's own policies of the
    principal the guard reads); every other param is read (fail closed)."""
    example_outputs: ClassVar[Mapping[str, JsonValue]] = {}
    """Every key `apply` may return in `outputs`, with an example value (`${steps.<id>.result.<key>}` reads them).

    A dry run plans later steps on these (see `dry_run_outputs`); the loader rejects a runbook reading a key
    not declared here, and the contract meta-test rejects an actuator returning outputs it does not declare.
    """

    extra: ClassVar[str | None] = None
    """The optional dependency group the actuator needs to act (`pip install 'incident-responder[EXTRA]'`), if any:
    `unavailable` says whether this install has it, and `responder run` refuses to start without it."""

    def unavailable(self) -> str | None:
        """Why this install cannot run the actuator (its `extra`'s packages do not import), or None."""
        return None

    def target(self, p: P) -> str:
        """The one resource this call acts on (part of the idempotency key)."""
        raise NotImplementedError

    async def plan(self, p: P, ctx: ActuationContext) -> PlanPreview:
        """Describe the change without making it."""
        raise NotImplementedError

    async def apply(self, p: P, ctx: ActuationContext) -> ActuationResult:
        """Reach the desired state idempotently; return the prior and new state."""
        raise NotImplementedError

    async def verify(self, p: P, ctx: ActuationContext) -> bool:
        """True when the desired state holds now (read back from the cloud)."""
        raise NotImplementedError

    async def observe(self, p: P, ctx: ActuationContext) -> dict[str, JsonValue] | None:
        """The target's state now, in the shape of `ActuationResult.prior` / `after` (None: cannot say).

        Read once before the first attempt and bound to the intent, so a retry never records its own
        earlier change as the prior state; undo compares it with the recorded after-state.
        """
        return None

    def comparable(self, after: Mapping[str, Any]) -> dict[str, Any]:
        """A recorded after-state in the shape `observe()` reports now, for undo's compare-and-set: as recorded by
        default; an actuator whose recorded shape changed across releases maps the old one here."""
        return dict(after)

    async def outputs_now(self, p: P, ctx: ActuationContext) -> dict[str, JsonValue] | None:
        """The outputs `apply` returned, rebuilt by reading the target once its change holds (`verify()` said so), for
        a step whose reply was lost (a retry that finds its lost attempt's change, an open intent after a crash).

        Only keys whose value a read proves are returned, each what `apply` would have returned; a declared key left
        out is recorded as lost, and a later step reading it fails (and escalates) rather than guessing. None (the
        default): nothing can be read back, so every declared output is lost. Never a fabricated value.
        """
        return None

    async def operator_params(self, raw: dict[str, Any], ctx: ActuationContext) -> dict[str, Any]:
        """Params an operator gave (`responder models …`, an operator request), completed from the world before
        they are validated: by default as given; ConfigError when a missing one cannot be found."""
        return raw

    def dry_run_outputs(self, p: P) -> dict[str, JsonValue]:
        """The outputs a dry run assumes `apply` would return for `p`.

        By default `example_outputs`, where a key that is also a param (`model`, `version`, …) takes the
        param's value.
        """
        given = p.model_dump(mode="json")
        return {k: given[k] if given.get(k) is not None else v for k, v in self.example_outputs.items()}

    def reverse_params(self, p: P, result: ActuationResult) -> dict[str, Any] | None:
        """Params for the reverse actuator, from the params and the recorded result."""
        return None
