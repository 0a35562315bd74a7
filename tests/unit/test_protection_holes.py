"""Protected ids protect a SageMaker endpoint (and the model it serves), an IAM principal by a path-form ARN, a role by
a session ARN, a Lambda function by a qualified ARN and a bucket by an object ARN, whichever form the step names them
by; and nothing more than they name."""

from __future__ import annotations

import pytest

from responder.engine.iamprincipals import PrincipalForms
from responder.models.event import Resource, ResourceKind
from tests.guard_kit import IamPaths, SettableClock, event_naming, step_refused

ENDPOINT = {"endpoint_name": "fraud-scoring", "role_names": ["inference-gateway"]}
ENDPOINT_ARN = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/fraud-scoring"
KEY = "AKIAABCDEFGHIJKLMNOP"


@pytest.mark.parametrize("actuator", ["aws.sagemaker.isolate_endpoint", "aws.sagemaker.release_endpoint"])
@pytest.mark.parametrize("pattern", [ENDPOINT_ARN, "arn:aws:sagemaker:*:*:endpoint/fraud-*",
                                     "arn:aws:sagemaker:us-east-1:123456789012:endpoint/FRAUD-SCORING"])
def test_an_endpoint_arn_protects_the_endpoint_a_step_names_by_name(actuator: str, pattern: str) -> None:
    """An endpoint ARN pattern refuses a step naming the endpoint by name (before: only the name protected it)."""
    assert step_refused([pattern], actuator, ENDPOINT)
    assert not step_refused([pattern], actuator, {**ENDPOINT, "endpoint_name": "churn-model"})


def test_an_endpoint_named_by_arn_in_the_finding_is_protected_by_its_name() -> None:
    """A drift finding giving an endpoint's ARN matches a name pattern, and an ARN pattern protects it by name."""
    resource = Resource(kind=ResourceKind.ENDPOINT, id=ENDPOINT_ARN)
    assert step_refused(["fraud-scoring"], "aws.sagemaker.isolate_endpoint", ENDPOINT, event_naming(resource))


@pytest.mark.parametrize(("pattern", "params"), [
    ("arn:aws:iam::123456789012:user/team/ml-training", {"user_name": "ml-training", "access_key_id": KEY}),
    ("arn:aws:iam::*:user/a/b/ML-Training", {"user_name": "ml-training", "access_key_id": KEY}),
    ("user/team/ml-training", {"user_name": "ml-training", "access_key_id": KEY}),
])
def test_a_path_form_arn_protects_the_user_a_step_names_by_name(pattern: str, params: dict[str, str]) -> None:
    """A path-form ARN `user/team/ml-training` protects the user `ml-training`, refusing a step naming it by name."""
    assert step_refused([pattern], "aws.iam.deactivate_access_key", params)
    assert not step_refused([pattern], "aws.iam.deactivate_access_key", {**params, "user_name": "ml-train"})


@pytest.mark.parametrize("principal_type", ["role", "user"])
def test_a_path_form_arn_protects_the_principal_a_quarantine_names(principal_type: str) -> None:
    """`role/admins/BreakGlass` (or a user's) protects the principal a quarantine or session revocation names."""
    params = {"principal_type": principal_type, "principal_name": "BreakGlass"}
    pattern = f"arn:aws:iam::*:{principal_type}/admins/BreakGlass"
    for actuator in ("aws.iam.quarantine_principal", "aws.iam.revoke_sessions"):
        assert step_refused([pattern], actuator, params)


def test_a_path_glob_is_not_widened_to_every_name() -> None:
    """A path glob `role/admins/*` refuses roles under /admins/ only, not a role named by name alone with path `/`."""
    params = {"principal_type": "role", "principal_name": "app-worker"}
    reader = PrincipalForms(IamPaths({"role/app-worker": "/"}), clock=SettableClock())
    assert not step_refused(["arn:aws:iam::*:role/admins/*"], "aws.iam.revoke_sessions", params, principals=reader)
    role = Resource(kind=ResourceKind.IAM_ROLE, id="app-worker", name="app-worker", attributes={"path": "/admins/"})
    assert step_refused(["arn:aws:iam::*:role/admins/*"], "aws.iam.revoke_sessions", params, event_naming(role))


@pytest.mark.parametrize("pattern", ["arn:aws:lambda:us-east-1:123456789012:function:proxy:live",
                                     "arn:aws:lambda:*:*:function:proxy:*"])
def test_a_qualified_function_arn_protects_the_function_a_step_throttles(pattern: str) -> None:
    """A qualified function ARN pattern refuses throttling that function named by name, not another function."""
    assert step_refused([pattern], "aws.lambda.throttle_function", {"function_name": "proxy"})
    assert not step_refused([pattern], "aws.lambda.throttle_function", {"function_name": "proxy2"})


@pytest.mark.parametrize("pattern", ["arn:aws:s3:::training-data/*", "arn:aws:s3:::training-data/models/a.bin"])
def test_an_object_arn_protects_its_bucket(pattern: str) -> None:
    """An object ARN pattern refuses blocking public access on its bucket, and not on another bucket."""
    assert step_refused([pattern], "aws.s3.block_public_access", {"bucket": "training-data"})
    assert not step_refused([pattern], "aws.s3.block_public_access", {"bucket": "training-data-2"})


@pytest.mark.parametrize(("actuator", "params"), [
    ("model.switch_version", {"model": "fraud-scoring", "version": "v2"}),
    ("model.rollback_to_last_signed", {"model": "fraud-scoring", "from_version": "v3"}),
    ("model.quarantine_version", {"model": "fraud-scoring", "version": "v2"}),
])
def test_an_endpoint_arn_protects_the_model_it_serves(actuator: str, params: dict[str, str]) -> None:
    """An endpoint ARN pattern refuses a model step on the SageMaker model it serves, and not on another model."""
    assert step_refused([ENDPOINT_ARN], actuator, params)
    assert not step_refused([ENDPOINT_ARN], actuator, {**params, "model": "churn-model"})


@pytest.mark.parametrize("pattern", ["arn:aws:sts::123456789012:assumed-role/BreakGlass/alice",
                                     "arn:aws:sts::*:assumed-role/BreakGlass/*",
                                     "arn:aws:sts::*:assumed-role/Break*/*"])
@pytest.mark.parametrize("actuator", ["aws.iam.revoke_sessions", "aws.iam.quarantine_principal"])
def test_an_assumed_role_session_arn_protects_its_role(pattern: str, actuator: str) -> None:
    """A CloudTrail `assumed-role/ROLE/SESSION` ARN protects ROLE from revoke or quarantine, and not another role."""
    assert step_refused([pattern], actuator, {"principal_type": "role", "principal_name": "BreakGlass"})
    assert not step_refused([pattern], actuator, {"principal_type": "role", "principal_name": "app-worker"})
