"""Tabletop expectations: a parameter, world name, status or field that could never match is refused at load."""

from __future__ import annotations

from tests.playbook_kit import LEAKED, refused, validate, write

NOT_DONE = "  - id: spare-kept\n    kind: step_not_done\n    actuator: aws.iam.deactivate_access_key\n"


def test_step_not_done_with_a_misspelt_param_is_refused(tmp_path):
    """`acess_key_id` is no parameter of the actuator (the negation would always pass): refused with the valid names."""
    path = write(tmp_path, LEAKED + NOT_DONE + "    params: {acess_key_id: spare}\n")
    refused(path, "20:28", "'acess_key_id' is no parameter of aws.iam.deactivate_access_key",
            "did you mean 'access_key_id'?", "choose from ['access_key_id', 'user_name']")


def test_step_not_done_with_a_misspelt_world_name_is_refused(tmp_path):
    """`leakd` is no world name and nothing carries it (bound to no id, it never matches): refused with the names."""
    path = write(tmp_path, LEAKED + NOT_DONE + "    params: {access_key_id: leakd}\n")
    refused(path, "20:29", "access_key_id: 'leakd' is no world name but close to one, and no inject or runbook "
            "carries it", "did you mean 'leaked'?", "choose from ['leaked', 'ml-training', 'quarantine', 'spare']")


def test_a_reference_in_params_is_refused(tmp_path):
    """`${world.keys.spare}` in params would be compared as written, never bound: refused (write the world name)."""
    path = write(tmp_path, LEAKED + NOT_DONE + "    params: {access_key_id: '${world.keys.spare}'}\n")
    refused(path, "20:29", "params are world names or literal values, never references")


def test_params_of_a_step_named_without_actuator_are_its_actuators(tmp_path):
    """With `step` and `runbook` alone, params are checked against that step's actuator."""
    tail = ("  - id: spare-kept\n    kind: step_not_done\n    runbook: access-key-compromise\n"
            "    step: deactivate-key\n    params: {user: ml-training}\n")
    refused(write(tmp_path, LEAKED + tail), "21:20", "'user' is no parameter of aws.iam.deactivate_access_key")


def test_params_on_requests_and_trips_are_checked_too(tmp_path):
    """`approval_requested` and `guard_tripped` name steps by params as well: a misspelt one is refused there too."""
    tail = ("  - {id: asked, kind: approval_requested, actuator: aws.iam.deactivate_access_key, "
            "params: {acess_key_id: leaked}}\n"
            "  - {id: held, kind: guard_tripped, reason: quota, count: 0, params: {access_key_id: leakd}}\n")
    path = write(tmp_path, LEAKED + tail)
    refused(path, "17:107", "'acess_key_id' is no parameter of aws.iam.deactivate_access_key")
    refused(path, "18:86", "access_key_id: 'leakd' is no world name")


def test_world_names_and_carried_literals_validate(tmp_path):
    """A world name, a literal the inject carries (`AKIAEXAMPLE`) and a param of a step named by id all load."""
    tail = (NOT_DONE + "    params: {access_key_id: spare, user_name: ml-training}\n"
            "  - {id: other, kind: step_not_done, step: deactivate-key, params: {access_key_id: AKIAEXAMPLE}}\n")
    path = write(tmp_path, LEAKED + tail)
    assert validate(str(path)) == (0, f"✓ {path}")


def test_a_param_value_built_by_a_template_validates(tmp_path):
    """A value no world name is close to (a title a runbook template builds, an id) loads: unknown is not a typo."""
    tail = ("  - id: no-escalation\n    kind: step_not_done\n    step: escalate-oncall\n"
            "    params: {title: 'containment failed: deactivate-key (aws.iam.deactivate_access_key)', "
            "severity: critical}\n"
            "  - {id: other, kind: step_not_done, actuator: aws.iam.deactivate_access_key, "
            "params: {access_key_id: AKIA0000SOMEOTHERKEY}}\n")
    path = write(tmp_path, LEAKED + tail)
    assert validate(str(path)) == (0, f"✓ {path}")


def test_an_explicit_null_for_a_field_the_kind_ignores_validates(tmp_path):
    """`within: null` and `status: null` on a step_not_done say "no value" and load (a value there is refused)."""
    path = write(tmp_path, LEAKED + NOT_DONE + "    within: null\n    status: null\n")
    assert validate(str(path)) == (0, f"✓ {path}")


def test_misspelt_status_is_refused(tmp_path):
    """A step_done `status` that is no step status (it could only ever match nothing) is refused with the choices."""
    tail = "  - {id: failed, kind: step_done, actuator: aws.iam.deactivate_access_key, status: faild, count: 0}\n"
    refused(write(tmp_path, LEAKED + tail), "17:84", "status 'faild' is no step status; did you mean 'failed'?")


def test_a_field_the_kind_does_not_read_is_refused(tmp_path):
    """`status` on a step_not_done and `params` on a dead_lettered would be ignored: each is refused at its line."""
    tail = (NOT_DONE + "    status: failed\n"
            "  - {id: dead, kind: dead_lettered, reason: decode, params: {access_key_id: leaked}}\n")
    path = write(tmp_path, LEAKED + tail)
    refused(path, "20:13", "a step_not_done expectation does not read `status` (it would be ignored)")
    refused(path, "21:61", "a dead_lettered expectation does not read `params`", "it reads ['count', 'reason']")
