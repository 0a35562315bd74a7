"""What a step acts on, for the tag guard (`tagreads`): the resources (`kind id`) its actuator and parameters name
(never the event), a model rollback's or switch's registry included (`serving`), and the IAM actions their tags are
read with (`PERMISSIONS`, `needed_permissions`: what the actuators acting on them declare)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from responder.actuators.base import ModelConfig

_BY_SERVICE: dict[str, tuple[tuple[str, str], ...]] = {  # actuator prefix → (parameter, kind) of what it acts on
    "aws.ec2.": (("instance_id", "instance"),),
    "aws.iam.": (("user_name", "user"), ("principal_name", "principal"), ("secret_name", "store")),
    "aws.sagemaker.": (("endpoint_name", "endpoint"), ("role_names", "role")),
    "aws.kms.": (("key_id", "key"),),
    "aws.s3.": (("bucket", "bucket"),),
    "aws.secretsmanager.": (("secret_id", "secret"),),
    "aws.lambda.": (("function_name", "function"),),
    "aws.apigateway.": (("api_key_id", "apikey"),),
    "aws.cloudtrail.": (("trail", "trail"),),
}
NO_RESOURCE = ("model.quarantine_version",)  # writes a new mark in responder's own registry: no tagged resource
SERVING = ("model.rollback_to_last_signed", "model.switch_version")  # change what the model's registry serves
PERMISSIONS = {"role": "iam:GetRole", "user": "iam:GetUser", "instance": "ec2:DescribeInstances",
               "bucket": "s3:GetBucketTagging", "key": "kms:ListResourceTags",
               "secret": "secretsmanager:DescribeSecret", "store": "secretsmanager:DescribeSecret",  # nosec B105 # an IAM action, not a password
               "function": "lambda:GetFunction, lambda:ListTags",
               "endpoint": "sagemaker:DescribeEndpoint, sagemaker:ListTags",
               "apikey": "apigateway:GET", "trail": "cloudtrail:GetTrail, cloudtrail:ListTags",
               "parameter": "ssm:ListTagsForResource"}
"""The permission each kind's tags are read with (declared by the actuators acting on that kind)."""


def _values(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    return [v for v in value if isinstance(v, str) and v] if isinstance(value, list | tuple) else []


def serving(params: Mapping[str, Any], models: ModelConfig) -> set[str]:
    """What a model rollback or switch changes (`kind id`): a SageMaker registry's endpoint, an S3 registry's serving
    pointer in SSM, nothing of AWS for a local registry (the step's literal `registry`, else the setting's)."""
    registry, model = str(params.get("registry") or models.registry), str(params.get("model") or "")
    if registry.startswith("sagemaker+s3://"):
        return {f"endpoint {model}"}
    if registry.startswith("s3://"):
        return {f"parameter /{models.ssm_prefix.strip('/')}/{model}/serving"}
    return set()


def acted_on(actuator: str, params: Mapping[str, Any], models: ModelConfig | None = None) -> set[str] | str:
    """The resources (`kind id`) a step of `actuator` acts on, from its parameters (and the model registry's settings,
    `models`), or why their tags cannot be read (no reader for the actuator's kind)."""
    if actuator in NO_RESOURCE:
        return set()
    if actuator in SERVING:
        return serving(params, models or ModelConfig())
    prefix = next((p for p in _BY_SERVICE if actuator.startswith(p)), None)
    if prefix is None:
        return (f"{actuator!r} acts on a kind whose tags responder cannot read, and a protected tag is set: refused "
                f"(protected tags)")
    keys: set[str] = set()
    for param, kind in _BY_SERVICE[prefix]:
        if kind == "principal":
            kind = str(params.get("principal_type", ""))
        keys.update(f"{kind} {v}" for v in _values(params.get(param)))
    return keys


def needed_permissions(actuator: str, fields: Iterable[str]) -> set[str]:
    """The IAM actions the guard reads the tags of what a step of `actuator` (whose parameters are `fields`) acts on
    with: what that actuator must declare."""
    prefix = next((p for p in _BY_SERVICE if actuator.startswith(p)), None)
    kinds = {k for param, k in _BY_SERVICE.get(prefix or "", ()) if param in set(fields)}
    kinds = (kinds - {"principal"}) | ({"role", "user"} if "principal" in kinds else set())
    return {action for kind in kinds for action in PERMISSIONS[kind].split(", ")}
