"""Runbooks load, and bad ones fail with file, line and the valid choices."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from responder.actuators import registry
from responder.catalog import load_runbooks
from responder.cli import app
from responder.errors import RunbookError
from responder.models.threat import ThreatCategory

GOOD = """\
id: {id}
trigger: {{source: guardduty, type: "*"}}
steps:
  - id: deactivate-key
    actuator: {actuator}
    with: {{user_name: "${{event.actor}}", access_key_id: "${{event.resource.access_key.id}}"}}
"""


def test_shipped_runbooks_load(runbooks_dir):
    """Every runbook in runbooks/ validates."""
    assert [rb.id for rb in load_runbooks(runbooks_dir, registry)]


def test_unknown_actuator_names_line_and_choices(tmp_path):
    """A misspelt actuator fails at its line and lists the registered actuators."""
    (tmp_path / "bad.yaml").write_text(GOOD.format(id="bad", actuator="aws.iam.deactivate_acess_key"))
    with pytest.raises(RunbookError) as info:
        load_runbooks(tmp_path, registry)
    assert info.value.line == 5
    assert "aws.iam.deactivate_access_key" in str(info.value)


@pytest.mark.parametrize(("category", "col"), [("lmjacking", 21), ("[model_drift, lmjacking]", 35)])
def test_unknown_category_names_line_column_and_choices(tmp_path, category, col):
    """A misspelt threat category (alone or in a list) fails at its line:column and lists every valid category."""
    text = GOOD.format(id="cat", actuator="aws.iam.deactivate_access_key").replace(
        "trigger: {source: guardduty", f"trigger: {{category: {category}, source: guardduty")
    (tmp_path / "cat.yaml").write_text(text)
    result = CliRunner().invoke(app, ["runbooks", "validate", str(tmp_path)])
    assert result.exit_code == 3
    out = " ".join(result.output.split())
    assert f"cat.yaml:2:{col}" in out
    assert all(f"'{c.value}'" in out for c in ThreatCategory)


def test_unknown_key_is_rejected_with_location(tmp_path):
    """A key the schema does not know fails with the file and line."""
    (tmp_path / "typo.yaml").write_text(
        GOOD.format(id="typo", actuator="aws.iam.deactivate_access_key") + "stepz: []\n"
    )
    with pytest.raises(RunbookError) as info:
        load_runbooks(tmp_path, registry)
    assert "typo.yaml:7" in str(info.value)


def test_id_must_match_file_name(tmp_path):
    """A runbook whose id differs from its file stem is rejected."""
    (tmp_path / "one.yaml").write_text(GOOD.format(id="two", actuator="aws.iam.deactivate_access_key"))
    with pytest.raises(RunbookError, match="file name"):
        load_runbooks(tmp_path, registry)


def test_validate_command_exit_code(tmp_path, runbooks_dir):
    """`runbooks validate` exits 0 on the shipped set and 3 on a broken one."""
    runner = CliRunner()
    assert runner.invoke(app, ["runbooks", "validate", str(runbooks_dir)]).exit_code == 0
    (tmp_path / "x.yaml").write_text("id: x\n")
    assert runner.invoke(app, ["runbooks", "validate", str(tmp_path)]).exit_code == 3


@pytest.mark.parametrize("params", ["{model: fraud}", "{model: fraud, from_version: null, only_if_unverified: false}",
                                    '{model: fraud, only_if_unverified: "false"}',
                                    '{model: fraud, only_if_unverified: "no"}',
                                    "{model: fraud, only_if_unverified: 0}"])
def test_rollback_naming_no_start_version_fails_at_load(tmp_path, params):
    """A rollback step with neither from_version nor only_if_unverified fails at load: file:line and both choices."""
    (tmp_path / "rb.yaml").write_text(
        'id: rb\ntrigger: {source: guardduty, type: "*"}\ngroup_by: "${event.actor}"\nsteps:\n'
        f"  - id: s\n    actuator: model.rollback_to_last_signed\n    with: {params}\n"
    )
    with pytest.raises(RunbookError, match="valid choices: from_version, only_if_unverified") as info:
        load_runbooks(tmp_path, registry)
    assert "rb.yaml:7" in str(info.value)


@pytest.mark.parametrize("params", ['{model: fraud, from_version: "${event.attributes.version}"}',
                                    "{model: fraud, only_if_unverified: true}"])
def test_rollback_naming_its_start_version_loads(tmp_path, params):
    """from_version (a placeholder counts) or only_if_unverified: true is enough for a rollback step to load."""
    (tmp_path / "rb.yaml").write_text(
        'id: rb\ntrigger: {source: guardduty, type: "*"}\ngroup_by: "${event.actor}"\nsteps:\n'
        f"  - id: s\n    actuator: model.rollback_to_last_signed\n    with: {params}\n"
        "    on_failure: continue\n"
    )
    assert [rb.id for rb in load_runbooks(tmp_path, registry)] == ["rb"]


@pytest.mark.parametrize(("actuator", "params", "name"), [
    ("notify.webhook.post_message", '{url: "${event.attributes.callback}", key_id: oncall, title: t}', "url"),
    ("model.rollback_to_last_signed", '{model: fraud, registry: "${event.attributes.registry}"}', "registry"),
    ("aws.iam.restore_inline_policy", '{principal_type: role, principal_name: r, policy_name: responder-quarantine, '
                                      'document: "${event.attributes}"}', "document"),
    ("aws.iam.restore_inline_policy", '{principal_type: role, principal_name: r, policy_name: responder-quarantine, '
                                      'document: {Version: "2012-10-17", Statement: [{Effect: Deny, Action: "*", '
                                      'Resource: "${event.attributes.arn}"}]}}', "document"),
    ("aws.iam.restore_inline_policy", '{principal_type: role, principal_name: r, '
                                      'policy_name: "${event.attributes.policy}"}', "policy_name"),
    ("notify.webhook.post_message", '{url: "https://hooks.example/x", key_id: "${event.attributes.k}", title: t}',
     "key_id"),
    ("notify.kafka.publish_message", '{topic: "${event.attributes.topic}", title: t}', "topic"),
    ("notify.kafka.publish_message", '{topic: responder.notifications, key_id: "${event.attributes.k}", title: t}',
     "key_id"),
])
def test_literal_only_parameter_rejects_a_placeholder(tmp_path, actuator, params, name):
    """A webhook url, a notify topic or key, a registry, or a restore's policy or document from the event: refused."""
    (tmp_path / "lit.yaml").write_text(
        f'id: lit\ntrigger: {{source: guardduty, type: "*"}}\ngroup_by: "${{event.actor}}"\nsteps:\n'
        f"  - id: s\n    actuator: {actuator}\n    with: {params}\n"
    )
    with pytest.raises(RunbookError, match=f"{name!r} .* must be a literal") as info:
        load_runbooks(tmp_path, registry)
    assert "lit.yaml:7" in str(info.value)
