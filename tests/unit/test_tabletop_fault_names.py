"""Tabletop faults: a service or operation no AWS service of the actuators has could never fire, so it is refused."""

from __future__ import annotations

import pytest

from responder.actuators.base import Actuator, Params
from responder.actuators.registry import Registry
from responder.tabletop.operations import services
from tests.playbook_kit import LEAKED, refused, validate, write

MISSPELT = [
    ("{service: iam, operation: UpdateAccesKey, times: 2}", "18:31", "operation 'UpdateAccesKey' is no iam operation",
     "did you mean 'UpdateAccessKey' (iam)", "the calls the actuators declare: iam: CreateAccessKey"),
    ("kill_during: UpdateAccesKey", "18:18",
     "kill_during: 'UpdateAccesKey' is no operation of the AWS services the actuators call",
     "did you mean 'UpdateAccessKey' (iam)"),
    ("{service: iamm, operation: UpdateAccessKey}", "18:15", "service 'iamm' is no AWS service the actuators call",
     "did you mean 'iam'?", "'iam', 'kms'"),
]


@pytest.mark.parametrize(("fault", "where", "messages"), [(f, w, m) for f, w, *m in MISSPELT])
def test_misspelt_fault_names_are_refused_with_the_closest_name(tmp_path, fault: str, where: str,
                                                                messages: list[str]):
    """A misspelt operation, kill_during or service is refused at its line and column with the closest names."""
    refused(write(tmp_path, LEAKED + f"faults:\n  - {fault}\n"), where, *messages)


def test_empty_fault_window_is_refused(tmp_path):
    """A fault whose `end` is not after its `start` could never fire: refused at its `end`."""
    path = write(tmp_path, LEAKED + "faults:\n  - {service: iam, operation: UpdateAccessKey, start: 10m, end: 5m}\n")
    refused(path, "18:65", "window t+600s..t+300s is empty")


def test_real_operations_of_the_actuators_services_validate(tmp_path):
    """Botocore's names of the actuators' services load, a declared call or not (the run grades what never fired)."""
    tail = ("faults:\n  - {service: ec2, operation: DescribeInstances}\n  - {service: iam, operation: DeleteUser}\n"
            "  - kill_during: UpdateAccessKey\n  - kill_during: DescribeEndpoint\n")
    path = write(tmp_path, LEAKED + tail)
    assert validate(str(path)) == (0, f"✓ {path}")


class _Reader(Actuator[Params]):
    name = "aws.dynamodb.read_item"
    params = Params
    permissions = ("dynamodb:GetItem", "nosuchservice:Read")


def test_fault_services_are_those_the_actuators_declare():
    """The services a fault may name follow the actuators' declared permissions (known to botocore), not a list."""
    registry = Registry()
    registry.add(_Reader())
    assert services(registry) == ["dynamodb"]
