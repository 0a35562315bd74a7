"""Read the sandbox: end-state checks for expectations, and a snapshot of every seeded resource for collateral."""

from __future__ import annotations

from typing import Any

from responder.actuators.aws.ec2 import QUARANTINE_GROUP
from responder.actuators.aws.iam_policies import REVOKE_POLICY
from responder.actuators.aws.sagemaker import policy_name
from responder.actuators.aws.session import AwsSession
from responder.actuators.model.local import LocalStore
from responder.errors import ActuationError
from responder.tabletop.expectations import Expectation, StateCheck
from responder.tabletop.world import Bindings

BEDROCK_POLICY = "responder-deny-bedrock"  # the inline policy aws.iam.deny_bedrock_access writes (issue 10 § 5)


async def _safe(aws: AwsSession, service: str, op: str, **kw: Any) -> dict[str, Any] | None:
    try:
        return await aws.call(service, op, **kw)
    except ActuationError:
        return None


async def _role_policies(aws: AwsSession, role: str) -> list[str]:
    got = await _safe(aws, "iam", "list_role_policies", RoleName=role)
    return sorted(got["PolicyNames"]) if got else []


async def _instance_groups(aws: AwsSession, instance_id: str) -> list[str]:
    got = await aws.call("ec2", "describe_instances", InstanceIds=[instance_id])
    inst = got["Reservations"][0]["Instances"][0]
    return sorted(g["GroupName"] for g in inst.get("SecurityGroups", []))


async def _key_status(aws: AwsSession, b: Bindings, name: str) -> str:
    key = b.get("keys", name)
    listed = await aws.call("iam", "list_access_keys", UserName=key.extra["user"])
    return next((str(k["Status"]) for k in listed["AccessKeyMetadata"] if k["AccessKeyId"] == key.id), "deleted")


async def check_state(aws: AwsSession, b: Bindings, exp: Expectation) -> tuple[bool, str]:
    """Whether the sandbox is in the expected end state, and what was observed."""
    check, name = exp.check, exp.resource or ""
    if check in (StateCheck.KEY_INACTIVE, StateCheck.KEY_ACTIVE):
        status = await _key_status(aws, b, name)
        return status == ("Inactive" if check == StateCheck.KEY_INACTIVE else "Active"), f"key {name} is {status}"
    if check in (StateCheck.INSTANCE_QUARANTINED, StateCheck.INSTANCE_NOT_QUARANTINED):
        groups = await _instance_groups(aws, b.get("instances", name).id)
        only = groups == [QUARANTINE_GROUP]
        return only == (check == StateCheck.INSTANCE_QUARANTINED), f"instance {name} groups {groups}"
    if check == StateCheck.INVOKE_DENIED:
        ep = b.get("endpoints", name)
        roles = [exp.role] if exp.role else [r for r in ep.extra["invokers"].split(",") if r]
        missing = [r for r in roles if policy_name(name) not in await _role_policies(aws, r)]
        return bool(roles) and not missing, f"roles without a deny on {name}: {missing or 'none'}"
    if check == StateCheck.TRAIL_LOGGING:
        trail = await aws.call("cloudtrail", "get_trail_status", Name=name)
        return bool(trail.get("IsLogging")), f"trail {name} IsLogging={trail.get('IsLogging')}"
    if check == StateCheck.BEDROCK_DENIED:
        got = await _safe(aws, "iam", "list_user_policies", UserName=name)
        policies = sorted(got["PolicyNames"]) if got else []
        return BEDROCK_POLICY in policies, f"user {name} inline policies {policies}"
    if check == StateCheck.SESSIONS_REVOKED:
        policies = await _role_policies(aws, name)
        return REVOKE_POLICY in policies, f"role {name} inline policies {policies}"
    if check == StateCheck.BUCKET_BLOCKED:
        got = await _safe(aws, "s3", "get_public_access_block", Bucket=name)
        conf = got["PublicAccessBlockConfiguration"] if got else {}
        return bool(conf) and all(conf.values()), f"bucket {name} public access block {conf or 'absent'}"
    if check == StateCheck.SECRET_ROTATED:
        prev = await _safe(aws, "secretsmanager", "get_secret_value", SecretId=name, VersionStage="AWSPREVIOUS")
        seeded = b.get("secrets", name).extra["value"]
        ok = prev is not None and prev.get("SecretString") == seeded
        return ok, f"secret {name} {'rotated' if ok else 'not rotated'} (previous version holds the seeded value: {ok})"
    if check == StateCheck.API_KEY_DISABLED:
        got = await aws.call("apigateway", "get_api_key", apiKey=b.get("api_keys", name).id)
        return not got["enabled"], f"api key {name} enabled={got['enabled']}"
    if check == StateCheck.FUNCTION_THROTTLED:
        got = await aws.call("lambda", "get_function_concurrency", FunctionName=name)
        value = got.get("ReservedConcurrentExecutions")
        return value == 0, f"function {name} reserved concurrency {value}"
    return await _model_state(b, exp)


async def _model_state(b: Bindings, exp: Expectation) -> tuple[bool, str]:
    if b.registry is None:
        return False, "the world has no model registry"
    store, name = LocalStore(b.registry), exp.resource or ""
    if exp.check == StateCheck.ENDPOINT_SERVING:
        serving = await store.serving(name)
        return serving == exp.version, f"model {name} serving {serving}"
    quarantined = sorted(await store.quarantined(name))
    return exp.version in quarantined, f"model {name} quarantined versions {quarantined}"


async def snapshot(aws: AwsSession, b: Bindings) -> dict[str, Any]:
    """The observable state of every seeded resource, by `kind/name` (diffed before/after for collateral)."""
    out: dict[str, Any] = {}
    for name in b.by_kind.get("keys", {}):
        out[f"keys/{name}"] = await _key_status(aws, b, name)
    for name in b.by_kind.get("users", {}):
        got = await _safe(aws, "iam", "list_user_policies", UserName=name)
        out[f"users/{name}"] = sorted(got["PolicyNames"]) if got else None
    for name in b.by_kind.get("roles", {}):
        out[f"roles/{name}"] = await _role_policies(aws, name)
    for name, inst in b.by_kind.get("instances", {}).items():
        out[f"instances/{name}"] = await _instance_groups(aws, inst.id)
    for name, key in b.by_kind.get("api_keys", {}).items():
        out[f"api_keys/{name}"] = (await aws.call("apigateway", "get_api_key", apiKey=key.id))["enabled"]
    for name in b.by_kind.get("functions", {}):
        got = await aws.call("lambda", "get_function_concurrency", FunctionName=name)
        out[f"functions/{name}"] = got.get("ReservedConcurrentExecutions")
    for name in b.by_kind.get("secrets", {}):
        got = await aws.call("secretsmanager", "describe_secret", SecretId=name)
        out[f"secrets/{name}"] = sorted(got.get("VersionIdsToStages", {}))
    for name in b.by_kind.get("buckets", {}):
        got = await _safe(aws, "s3", "get_public_access_block", Bucket=name)
        out[f"buckets/{name}"] = got["PublicAccessBlockConfiguration"] if got else None
    for name in b.by_kind.get("trails", {}):
        out[f"trails/{name}"] = (await aws.call("cloudtrail", "get_trail_status", Name=name)).get("IsLogging")
    for name, key in b.by_kind.get("kms_keys", {}).items():
        out[f"kms_keys/{name}"] = (await aws.call("kms", "describe_key", KeyId=key.id))["KeyMetadata"]["KeyState"]
    if b.registry is not None:
        store = LocalStore(b.registry)
        for name in b.by_kind.get("models", {}):
            out[f"models/{name}"] = {"serving": await store.serving(name),
                                     "quarantined": sorted(await store.quarantined(name))}
    return out
