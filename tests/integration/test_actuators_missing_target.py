"""Actuators against the moto server whose target does not exist (or is matched by nothing): never a success."""

from __future__ import annotations

import pytest

from responder.actuators import registry
from responder.actuators.base import ActuationContext
from responder.actuators.model.params import VersionParams
from responder.actuators.model.s3 import S3Store
from responder.actuators.retry import settled_by_verify
from responder.errors import PermanentActuationError
from tests.integration.actuator_cases import CASES
from tests.modelkit import Keys, context, make_keys, publish

pytestmark = pytest.mark.integration
CASE = {c.actuator: c for c in CASES}
MISSING_INSTANCE = "i-0fedcba9876543210"
RESTORE = registry.get("aws.ec2.restore_instance_groups")
RESTORE_POLICY = registry.get("aws.iam.restore_inline_policy")
QUARANTINE = registry.get("model.quarantine_version")
REGISTRY_URL = "s3://models/registry"


def _ctx(aws) -> ActuationContext:
    return ActuationContext(aws=aws, incident="inc0123456789abcdef0", key="0f1e2d3c4b5a69788796a5b4c3d2e1f0")


async def test_restoring_groups_of_an_instance_that_does_not_exist_fails_not_found(aws):
    """The undo of an isolation on an unknown instance fails as not found, and verify() does not call it done."""
    p = RESTORE.params.model_validate({"instance_id": MISSING_INSTANCE,
                                       "groups_by_eni": {"eni-0123456789abcdef0": ["sg-0123456789abcdef0"]}})
    with pytest.raises(PermanentActuationError) as caught:
        await RESTORE.apply(p, _ctx(aws))
    assert caught.value.code == "InvalidInstanceID.NotFound"
    assert await settled_by_verify(RESTORE, p, _ctx(aws))() is None


async def test_restoring_groups_to_enis_no_longer_attached_fails(aws):
    """Recorded ENIs none of which is attached any more: nothing can be restored, so the step fails, naming them."""
    params = await CASE["aws.ec2.isolate_instance"].setup(aws)
    p = RESTORE.params.model_validate({**params, "groups_by_eni": {"eni-0123456789abcdef0": ["sg-0123456789abcdef0"]}})
    with pytest.raises(PermanentActuationError, match="eni-0123456789abcdef0") as caught:
        await RESTORE.apply(p, _ctx(aws))
    assert caught.value.code == "InvalidNetworkInterfaceID.NotFound"
    assert await RESTORE.verify(p, _ctx(aws)) is False


async def test_restoring_groups_when_one_recorded_eni_was_detached_restores_the_rest_unverified(aws):
    """Two ENIs isolated, one detached since: the other gets its groups back, but verify() does not call it done."""
    params = await CASE["aws.ec2.isolate_instance"].setup(aws)
    [inst] = (await aws.call("ec2", "describe_instances", InstanceIds=[params["instance_id"]]))["Reservations"][0][
        "Instances"]
    [web] = inst["SecurityGroups"]
    eni = await aws.call("ec2", "create_network_interface", SubnetId=inst["SubnetId"], Groups=[web["GroupId"]])
    second = eni["NetworkInterface"]["NetworkInterfaceId"]
    attached = await aws.call("ec2", "attach_network_interface", NetworkInterfaceId=second,
                              InstanceId=params["instance_id"], DeviceIndex=1)
    isolate = registry.get("aws.ec2.isolate_instance")
    isolated = await isolate.apply(isolate.params.model_validate(params), _ctx(aws))
    recorded = isolated.prior["groups_by_eni"]
    assert isinstance(recorded, dict)
    assert second in recorded
    assert len(recorded) == 2
    await aws.call("ec2", "detach_network_interface", AttachmentId=attached["AttachmentId"], Force=True)
    p = RESTORE.params.model_validate({**params, "groups_by_eni": recorded})
    result = await RESTORE.apply(p, _ctx(aws))
    assert second not in result.after["groups_by_eni"]  # type: ignore[operator]
    assert result.after["not_attached"] == [second]
    assert await RESTORE.verify(p, _ctx(aws)) is False


async def test_restoring_a_policy_of_a_missing_user_is_not_settled_by_verify(aws):
    """verify() of a policy undo for a user that does not exist is not 'done': a retry's check finds nothing applied."""
    p = RESTORE_POLICY.params.model_validate({"principal_type": "user", "principal_name": "no-such-user-here",
                                              "policy_name": "responder-revoke-older-sessions"})
    assert await settled_by_verify(RESTORE_POLICY, p, _ctx(aws))() is None
    with pytest.raises(PermanentActuationError, match="no-such-user-here"):
        await RESTORE_POLICY.verify(p, _ctx(aws))


async def test_releasing_an_endpoint_whose_role_is_gone_is_done(aws):
    """Removing a deny from a role that no longer exists: the deny is gone too, the desired state (no change)."""
    actuator = registry.get("aws.sagemaker.release_endpoint")
    p = actuator.params.model_validate({"endpoint_name": "fraud-scoring-prod", "role_names": ["deleted-role"]})
    result = await actuator.apply(p, _ctx(aws))
    assert result.changed is False
    assert await actuator.verify(p, _ctx(aws)) is True



@pytest.fixture(name="s3_registry")
async def _s3_registry(aws, tmp_path) -> tuple[S3Store, Keys]:
    """An S3 model registry on the moto server holding one signed version, fraud v1."""
    await aws.call("s3", "create_bucket", Bucket="models")
    store, keys = S3Store(aws, REGISTRY_URL), make_keys(tmp_path / "keys")
    await publish(store, tmp_path / "w", "fraud", "v1", keys.private)
    return store, keys


async def test_quarantining_a_version_of_a_model_the_registry_does_not_know_fails(aws, s3_registry):
    """A model with no version registered and none served (a misspelt name): the quarantine fails, writing no mark."""
    store, keys = s3_registry
    with pytest.raises(PermanentActuationError, match="fraud-scorer") as caught:
        await QUARANTINE.apply(VersionParams(model="fraud-scorer", version="v7", registry=REGISTRY_URL),
                               context(aws, REGISTRY_URL, keys))
    assert caught.value.code == "NotFound"
    assert await store.quarantined("fraud-scorer") == set()


async def test_quarantining_an_unregistered_version_of_a_known_model_is_done(aws, s3_registry):
    """An unregistered version of a registered model (what model-unsigned-deployed quarantines) is still marked."""
    store, keys = s3_registry
    result = await QUARANTINE.apply(VersionParams(model="fraud", version="v9", registry=REGISTRY_URL),
                                    context(aws, REGISTRY_URL, keys))
    assert result.changed is True
    assert "v9" in await store.quarantined("fraud")


@pytest.mark.parametrize("name", ["aws.ec2.isolate_instance", "aws.ec2.stop_instance", "aws.ec2.start_instance"])
async def test_acting_on_a_terminated_instance_fails_and_is_not_verified(aws, name):
    """A terminated instance cannot be isolated, stopped or started: the step fails (moto reported it done)."""
    params = await CASE["aws.ec2.isolate_instance"].setup(aws)
    await aws.call("ec2", "terminate_instances", InstanceIds=[params["instance_id"]])
    actuator = registry.get(name)
    p = actuator.params.model_validate(params)
    with pytest.raises(PermanentActuationError, match="terminated") as caught:
        await actuator.apply(p, _ctx(aws))
    assert caught.value.code == "IncorrectInstanceState"
    assert await actuator.verify(p, _ctx(aws)) is False
