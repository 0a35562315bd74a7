"""Through the moto server: each AWS actuator's `outputs_now` (the read that rebuilds a lost reply's outputs) gives
back exactly what its `apply` returned, and nothing once someone else changed what it made (never a made-up value)."""

from __future__ import annotations

from typing import Any

from responder.actuators import registry
from responder.actuators.aws.sagemaker import policy_name
from responder.actuators.aws.session import AwsSession
from responder.actuators.base import ActuationContext
from tests.integration.actuator_cases import _endpoint, _instance


def _ctx(aws: AwsSession, key: str = "k-1") -> ActuationContext:
    return ActuationContext(aws=aws, incident="inc-1", key=key)


async def _applied_then_read(name: str, params: dict[str, Any], aws: AwsSession) -> tuple[Any, Any]:
    """`name` applied with `params`, then read back: (the outputs apply returned, what outputs_now reads)."""
    act = registry.get(name)
    p = act.params.model_validate(params)
    done = await act.apply(p, _ctx(aws))
    assert await act.verify(p, _ctx(aws))
    return done.outputs, await act.outputs_now(p, _ctx(aws))


async def _read(name: str, params: dict[str, Any], aws: AwsSession) -> Any:
    act = registry.get(name)
    return await act.outputs_now(act.params.model_validate(params), _ctx(aws))


async def test_isolate_instance_reads_back_its_group(aws: AwsSession) -> None:
    """isolate_instance reads back the isolation group it applied."""
    applied, read = await _applied_then_read("aws.ec2.isolate_instance", await _instance(aws), aws)
    assert applied
    assert read == applied


async def test_rotate_secret_reads_back_its_token_until_rotated_by_hand(aws: AwsSession) -> None:
    """rotate_secret reads back its own version while current, and nothing once someone rotated it by hand."""
    await aws.call("secretsmanager", "create_secret", Name="s1", SecretString="old")
    applied, read = await _applied_then_read("aws.secretsmanager.rotate_secret", {"secret_id": "s1"}, aws)
    assert applied
    assert read == applied
    await aws.call("secretsmanager", "put_secret_value", SecretId="s1", SecretString="by hand")
    assert await _read("aws.secretsmanager.rotate_secret", {"secret_id": "s1"}, aws) is None


async def test_rotate_access_key_reads_back_the_new_key(aws: AwsSession) -> None:
    """rotate_access_key reads back the replacement key the secret records for the old one."""
    await aws.call("iam", "create_user", UserName="u1")
    old = (await aws.call("iam", "create_access_key", UserName="u1"))["AccessKey"]["AccessKeyId"]
    params = {"user_name": "u1", "access_key_id": old, "secret_name": "rotated/u1"}
    applied, read = await _applied_then_read("aws.iam.rotate_access_key", params, aws)
    assert applied
    assert read == applied


async def test_revoke_sessions_reads_back_the_cutoff(aws: AwsSession) -> None:
    """revoke_sessions reads back the cutoff in force."""
    await aws.call("iam", "create_user", UserName="u2")
    params = {"principal_type": "user", "principal_name": "u2"}
    applied, read = await _applied_then_read("aws.iam.revoke_sessions", params, aws)
    assert applied
    assert read == applied


async def test_isolate_endpoint_reads_back_its_roles_until_a_deny_is_removed(aws: AwsSession) -> None:
    """isolate_endpoint reads back the roles denied, and nothing once a role's deny was removed by hand."""
    params = await _endpoint(aws)
    applied, read = await _applied_then_read("aws.sagemaker.isolate_endpoint", params, aws)
    assert applied == {"roles": ["inference-gateway"]}
    assert read == applied
    await aws.call("iam", "delete_role_policy", RoleName="inference-gateway",
                   PolicyName=policy_name(params["endpoint_name"]))
    assert await _read("aws.sagemaker.isolate_endpoint", params, aws) is None
