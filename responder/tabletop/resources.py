"""A playbook's world: the sandbox resources and registry models seeded in moto before the first inject.

`World` holds one list per kind (IAM users and roles, EC2 instances, SageMaker endpoints, API keys, Lambda
functions, secrets, KMS keys, buckets, trails, registry models). Each resource has a name that injects refer to
as `${world.<kind>.<name>}` (`World.names`); `responder.tabletop.world` seeds them and binds those names to the
ids the sandbox issued. Unknown keys are rejected (`extra="forbid"`), as everywhere in the playbook file
(`responder.tabletop.models`, which re-exports these models).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from responder.actuators.model.versions import MODEL_NAME, VERSION_NAME

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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

    version: str = Field(pattern=VERSION_NAME, description="a registry version name: it becomes a path")
    state: VersionState = VersionState.SIGNED


class Model(_Strict):
    """A model in the local registry, its versions in publication order and the one being served."""

    name: str = Field(pattern=MODEL_NAME, description="a registry model name: it becomes a path")
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
