"""Behaviour moto cannot model, checked against botocore's Stubber (each test says what moto gets wrong)."""

from __future__ import annotations

from typing import Any

import botocore.exceptions
import orjson
import pytest
from botocore.stub import ANY, Stubber

from responder.actuators import registry
from responder.actuators.aws.session import AwsSession, classify
from responder.actuators.base import ActuationContext, ActuationResult
from responder.actuators.model.s3 import S3Store
from responder.errors import PermanentActuationError, TransientActuationError

INSTANCE = "i-0123456789abcdef0"
VPC = "vpc-0123456789abcdef0"
QUARANTINE = "sg-00000000000000001"
ENIS = {"eni-0000000000000000a": ["sg-0000000000000000a"], "eni-0000000000000000b": ["sg-0000000000000000b"]}


def _session() -> AwsSession:
    return AwsSession(endpoint_url="http://127.0.0.1:9", credentials={"aws_access_key_id": "x",
                                                                      "aws_secret_access_key": "x"})


def _describe_instance(stub: Stubber) -> None:
    stub.add_response("describe_instances", {"Reservations": [{"Instances": [
        {"InstanceId": INSTANCE, "VpcId": VPC, "State": {"Name": "running", "Code": 16}}]}]},
        {"InstanceIds": [INSTANCE]})


def _enis(groups: dict[str, list[str]]) -> dict:
    return {"NetworkInterfaces": [{"NetworkInterfaceId": eni, "Groups": [{"GroupId": g} for g in gs]}
                                  for eni, gs in groups.items()]}


def _group_found_then_enis_swapped(stub: Stubber) -> None:
    """The quarantine group found, then each of ENIS swapped to it alone and the instance tagged."""
    stub.add_response("describe_security_groups", {"SecurityGroups": [
        {"GroupId": QUARANTINE, "GroupName": "responder-quarantine", "IpPermissionsEgress": []}]}, {"Filters": ANY})
    stub.add_response("describe_network_interfaces", _enis(ENIS), {"Filters": ANY})
    for eni in ENIS:
        stub.add_response("modify_network_interface_attribute", {},
                          {"NetworkInterfaceId": eni, "Groups": [QUARANTINE]})
    stub.add_response("create_tags", {}, {"Resources": [INSTANCE], "Tags": ANY})


async def _isolate(aws: AwsSession, stub: Stubber) -> ActuationResult:
    """aws.ec2.isolate_instance applied to INSTANCE under `stub`, every stubbed response used."""
    with stub:
        actuator = registry.get("aws.ec2.isolate_instance")
        result = await actuator.apply(actuator.params.model_validate({"instance_id": INSTANCE}),
                                      ActuationContext(aws=aws, incident="inc", key="k"))
        stub.assert_no_pending_responses()
    return result


async def test_isolation_swaps_each_eni_of_a_multi_eni_instance():
    """Stubber (moto merges instance groups into ENIs): every ENI is swapped, no multi-ENI ModifyInstanceAttribute."""
    aws = _session()
    stub = Stubber(aws.client("ec2"))
    _describe_instance(stub)
    _group_found_then_enis_swapped(stub)
    result = await _isolate(aws, stub)
    assert result.prior == {"groups_by_eni": ENIS}
    assert result.changed is True


async def test_isolation_that_loses_the_quarantine_group_race_uses_the_winners_group():
    """Stubber (moto has no race): InvalidGroup.Duplicate on create means another isolation won; use its group."""
    aws = _session()
    stub = Stubber(aws.client("ec2"))
    _describe_instance(stub)
    stub.add_response("describe_security_groups", {"SecurityGroups": []}, {"Filters": ANY})
    stub.add_client_error("create_security_group", service_error_code="InvalidGroup.Duplicate", http_status_code=400)
    _group_found_then_enis_swapped(stub)
    result = await _isolate(aws, stub)
    assert result.outputs["quarantine_group"] == QUARANTINE
    assert result.changed is True

async def test_pending_snapshot_counts_as_taken():
    """Stubber, because moto completes snapshots at once: on AWS a retry sees `pending` and must not snapshot again."""
    aws = _session()
    stub = Stubber(aws.client("ec2"))
    stub.add_response("describe_volumes", {"Volumes": [{"VolumeId": "vol-0123456789abcdef0"}]}, {"Filters": ANY})
    stub.add_response("describe_snapshots", {"Snapshots": [
        {"SnapshotId": "snap-0123456789abcdef0", "VolumeId": "vol-0123456789abcdef0", "State": "pending"}]},
        {"OwnerIds": ["self"], "Filters": ANY})
    with stub:
        actuator = registry.get("aws.ec2.snapshot_volumes")
        result = await actuator.apply(actuator.params.model_validate({"instance_id": INSTANCE}),
                                      ActuationContext(aws=aws, incident="inc", key="k"))
        stub.assert_no_pending_responses()
    assert result.changed is False
    assert result.outputs == {"snapshot_ids": ["snap-0123456789abcdef0"]}



async def test_snapshot_of_an_instance_store_backed_instance_verifies_with_none_taken():
    """Stubber (moto runs only EBS-backed instances): an instance-store root with no EBS volume is done, none taken."""
    aws = _session()
    stub = Stubber(aws.client("ec2"))
    for _ in range(2):  # apply, then verify: each reads the volumes, the snapshots, then the instance
        stub.add_response("describe_volumes", {"Volumes": []}, {"Filters": ANY})
        stub.add_response("describe_snapshots", {"Snapshots": []}, {"OwnerIds": ["self"], "Filters": ANY})
        stub.add_response("describe_instances", {"Reservations": [{"Instances": [
            {"InstanceId": INSTANCE, "RootDeviceType": "instance-store", "State": {"Name": "running", "Code": 16}}]}]},
            {"InstanceIds": [INSTANCE]})
    with stub:
        actuator = registry.get("aws.ec2.snapshot_volumes")
        p = actuator.params.model_validate({"instance_id": INSTANCE})
        ctx = ActuationContext(aws=aws, incident="inc", key="k")
        result = await actuator.apply(p, ctx)
        assert await actuator.verify(p, ctx) is True
        stub.assert_no_pending_responses()
    assert result.outputs == {"snapshot_ids": []}


async def test_snapshot_of_an_unknown_instance_fails_not_found():
    """Stubber: no volume, no snapshot and DescribeInstances knows no such instance: a not-found failure, no success."""
    aws = _session()
    stub = Stubber(aws.client("ec2"))
    stub.add_response("describe_volumes", {"Volumes": []}, {"Filters": ANY})
    stub.add_response("describe_snapshots", {"Snapshots": []}, {"OwnerIds": ["self"], "Filters": ANY})
    stub.add_client_error("describe_instances", service_error_code="InvalidInstanceID.NotFound",
                          http_status_code=400, expected_params={"InstanceIds": [INSTANCE]})
    with stub:
        actuator = registry.get("aws.ec2.snapshot_volumes")
        with pytest.raises(PermanentActuationError) as caught:
            await actuator.apply(actuator.params.model_validate({"instance_id": INSTANCE}),
                                 ActuationContext(aws=aws, incident="inc", key="k"))
        stub.assert_no_pending_responses()
    assert caught.value.code == "InvalidInstanceID.NotFound"


async def test_revocation_cutoff_only_moves_forward():
    """Stubber, because moto ignores policy conditions: an existing later cutoff from another incident is kept."""
    aws = _session()
    stub = Stubber(aws.client("iam"))
    later = "2099-01-01T00:00:00Z"
    doc = {"Version": "2012-10-17", "Statement": [{"Sid": "ResponderRevokeother", "Effect": "Deny", "Action": "*",
           "Resource": "*", "Condition": {"DateLessThan": {"aws:TokenIssueTime": later}}}]}
    stub.add_response("get_user_policy", {"UserName": "u", "PolicyName": "responder-revoke-older-sessions",
                                          "PolicyDocument": orjson.dumps(doc).decode()},
                      {"UserName": "u", "PolicyName": "responder-revoke-older-sessions"})
    with stub:
        actuator = registry.get("aws.iam.revoke_sessions")
        result = await actuator.apply(actuator.params.model_validate({"principal_type": "user", "principal_name": "u"}),
                                      ActuationContext(aws=aws, incident="inc", key="k"))
        stub.assert_no_pending_responses()
    assert result.changed is False
    assert result.after == {"document": doc, "cutoff": later}


async def test_a_revocation_kept_under_another_incidents_later_cutoff_verifies():
    """A revocation kept under another incident's later cutoff writes nothing and verifies by that cutoff."""
    aws = _session()
    stub = Stubber(aws.client("iam"))
    doc = {"Version": "2012-10-17", "Statement": [{"Sid": "ResponderRevokeother", "Effect": "Deny", "Action": "*",
           "Resource": "*", "Condition": {"DateLessThan": {"aws:TokenIssueTime": "2099-01-01T00:00:00Z"}}}]}
    for _ in range(2):
        stub.add_response("get_user_policy", {"UserName": "u", "PolicyName": "responder-revoke-older-sessions",
                                              "PolicyDocument": orjson.dumps(doc).decode()},
                          {"UserName": "u", "PolicyName": "responder-revoke-older-sessions"})
    actuator = registry.get("aws.iam.revoke_sessions")
    p = actuator.params.model_validate({"principal_type": "user", "principal_name": "u"})
    with stub:
        ctx = ActuationContext(aws=aws, incident="inc-kept", key="kept-under-a-later-cutoff")
        assert (await actuator.apply(p, ctx)).changed is False
        assert await actuator.verify(p, ctx) is True
        stub.assert_no_pending_responses()


async def test_a_revocation_whose_put_failed_does_not_verify_under_another_incidents_later_cutoff():
    """A revocation whose own put failed does not verify by another incident's later cutoff."""
    aws = _session()
    stub = Stubber(aws.client("iam"))
    names = {"UserName": "u", "PolicyName": "responder-revoke-older-sessions"}
    stub.add_client_error("get_user_policy", service_error_code="NoSuchEntity", http_status_code=404,
                          expected_params=names)
    stub.add_client_error("put_user_policy", service_error_code="Throttling", http_status_code=400,
                          expected_params={**names, "PolicyDocument": ANY})
    other = {"Version": "2012-10-17", "Statement": [{"Sid": "ResponderRevokeother", "Effect": "Deny", "Action": "*",
             "Resource": "*", "Condition": {"DateLessThan": {"aws:TokenIssueTime": "2099-01-01T00:00:00Z"}}}]}
    stub.add_response("get_user_policy", {**names, "PolicyDocument": orjson.dumps(other).decode()}, names)
    actuator = registry.get("aws.iam.revoke_sessions")
    p = actuator.params.model_validate({"principal_type": "user", "principal_name": "u"})
    with stub:
        ctx = ActuationContext(aws=aws, incident="inc-put-failed", key="put-failed-then-another-cutoff")
        with pytest.raises(TransientActuationError):
            await actuator.apply(p, ctx)
        assert await actuator.verify(p, ctx) is False
        stub.assert_no_pending_responses()


async def test_revocation_from_an_earlier_incident_does_not_verify():
    """Stubber: with no issued_before, only a cutoff under this step's Sid verifies, not an older incident's."""
    aws = _session()
    stub = Stubber(aws.client("iam"))
    actuator = registry.get("aws.iam.revoke_sessions")
    p = actuator.params.model_validate({"principal_type": "user", "principal_name": "u"})
    for sid in ("ResponderRevokeother", "ResponderRevokek"):
        doc = {"Version": "2012-10-17", "Statement": [{"Sid": sid, "Effect": "Deny", "Action": "*", "Resource": "*",
               "Condition": {"DateLessThan": {"aws:TokenIssueTime": "2020-01-01T00:00:00Z"}}}]}
        stub.add_response("get_user_policy", {"UserName": "u", "PolicyName": "responder-revoke-older-sessions",
                                              "PolicyDocument": orjson.dumps(doc).decode()},
                          {"UserName": "u", "PolicyName": "responder-revoke-older-sessions"})
    with stub:
        ctx = ActuationContext(aws=aws, incident="inc", key="k")
        assert await actuator.verify(p, ctx) is False
        assert await actuator.verify(p, ctx) is True
        stub.assert_no_pending_responses()

async def test_read_timeout_is_transient_and_access_denied_is_permanent():
    """A botocore hook and Stubber (moto neither times out nor denies): timeouts are transient, AccessDenied is not."""
    aws = _session()
    client = aws.client("kms")

    def timeout(**_: object) -> None:
        raise botocore.exceptions.ReadTimeoutError(endpoint_url="http://127.0.0.1:9")

    client.meta.events.register("before-call.kms.DescribeKey", timeout)
    with pytest.raises(TransientActuationError):
        await aws.call("kms", "describe_key", KeyId="1234abcd-12ab-34cd-56ef-1234567890ab")
    client.meta.events.unregister("before-call.kms.DescribeKey", timeout)
    stub = Stubber(client)
    stub.add_client_error("describe_key", service_error_code="AccessDeniedException", http_status_code=400)
    with stub, pytest.raises(PermanentActuationError):
        await aws.call("kms", "describe_key", KeyId="1234abcd-12ab-34cd-56ef-1234567890ab")



@pytest.mark.parametrize("code", ["ConcurrentModification", "ConcurrentModificationException",
                                  "EntityTemporarilyUnmodifiable", "TooManyUpdates", "ResourceConflictException"])
def test_concurrent_update_conflicts_are_transient(code):
    """A 400/409 conflict with another in-flight update is retried, not recorded as a permanent failure."""
    exc = botocore.exceptions.ClientError({"Error": {"Code": code, "Message": "busy"},
                                           "ResponseMetadata": {"HTTPStatusCode": 409}}, "PutRolePolicy")
    mapped = classify(exc)
    assert isinstance(mapped, TransientActuationError)
    assert mapped.code == code


class _BrokenBody:
    """A get_object Body whose stream fails midway, as botocore's StreamingBody does on a dropped connection."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def read(self) -> bytes:
        raise self.exc

    def iter_chunks(self, chunk_size: int) -> Any:
        yield b"partial"
        raise self.exc


class _BrokenStreams:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    async def call(self, service: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        return {"Body": _BrokenBody(self.exc)}


@pytest.mark.parametrize("exc", [botocore.exceptions.ReadTimeoutError(endpoint_url="http://127.0.0.1:9"),
                                 botocore.exceptions.ResponseStreamingError(error="connection reset"),
                                 botocore.exceptions.IncompleteReadError(actual_bytes=7, expected_bytes=10)],
                         ids=lambda e: type(e).__name__)
async def test_model_registry_body_stream_errors_are_transient(exc, tmp_path):
    """A registry object whose body stream fails (read or chunked download) raises TransientActuationError."""
    store = S3Store(_BrokenStreams(exc), "s3://models/registry")
    with pytest.raises(TransientActuationError):
        await store._get("registry/fraud/quarantine/v1.json")
    with pytest.raises(TransientActuationError):
        await store._download("registry/fraud/versions/v1/model/weights.bin", tmp_path / "weights.bin")
