"""`runbooks validate`: parameters, template paths, operators and safety rules, each at file:line:column."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from responder.catalog import check_directory, load_runbooks
from responder.cli import app
from responder.errors import RunbookError
from responder.models.runbook import Runbook
from responder.schema import runbook_schema_text
from tests.fakes import test_registry

BASE = """\
id: {id}
trigger:
  source: guardduty
  conditions:
    - {{field: {field}, op: {op}, value: {value}}}
steps:
  - id: deactivate-key
    actuator: aws.iam.deactivate_access_key
    with:
      user_name: {user}
      access_key_id: "${{event.resource.access_key.id}}"
"""


def _write(tmp_path, name="rb", *, field="event.severity.score", op="ge", value="5", user="alice", extra=""):
    (tmp_path / f"{name}.yaml").write_text(
        BASE.format(id=name, field=field, op=op, value=value, user=user) + extra)


def _errors(tmp_path) -> list[RunbookError]:
    reg, _, _ = test_registry()
    return check_directory(tmp_path, reg)[1]


def test_literal_parameter_is_checked_against_the_params_model(tmp_path):
    """A literal value the params model rejects fails at its own line and column."""
    _write(tmp_path, user="'bob; rm -rf /'")
    [err] = _errors(tmp_path)
    assert (err.line, err.column) == (10, 18)
    assert "user_name" in err.reason


def test_unknown_and_missing_parameters(tmp_path):
    """An unknown parameter lists the valid ones; a missing required one is named."""
    (tmp_path / "rb.yaml").write_text(
        "id: rb\ntrigger: {source: guardduty}\nsteps:\n"
        "  - {id: s, actuator: aws.iam.deactivate_access_key, with: {user: x, access_key_id: AKIAABCDEFGHIJKLMNOP}}\n")
    reasons = [e.reason for e in _errors(tmp_path)]
    assert any("unknown parameter 'user'" in r and "user_name" in r for r in reasons)
    assert any("missing parameter 'user_name'" in r for r in reasons)


@pytest.mark.parametrize(("user", "needle"), [
    ("${event.resource.acces_key.id}", "unknown resource kind"),
    ("${event.severity.scor}", "not a field of Severity"),
    ("${evnt.actor}", "paths start with one of"),
    ("${steps.later.result.x}", "does not run before"),
    ("${incident.owner}", "incident fields are"),
])
def test_template_paths_are_checked_against_the_event_model(tmp_path, user, needle):
    """A placeholder that can never resolve is an error naming what is valid."""
    _write(tmp_path, user=f'"{user}"')
    [err] = _errors(tmp_path)
    assert needle in err.reason
    assert err.line == 10


@pytest.mark.parametrize(("field", "op", "value", "needle"), [
    ("event.severity.score", "gte", "5", "unknown operator"),
    ("event.type", "regex", "'(['", "invalid regex"),
    ("event.source_ip", "eq", "x", "not a field of Event"),
    ("event.actor", "in", "x", "needs a list"),
])
def test_conditions_are_checked(tmp_path, field, op, value, needle):
    """Operators, operands and condition paths are validated at load."""
    _write(tmp_path, field=field, op=op, value=value)
    [err] = _errors(tmp_path)
    assert needle in err.reason
    assert err.line == 5


def test_destructive_step_cannot_skip_or_time_out_into_approval(tmp_path):
    """A destructive actuator with approval.required false or on_timeout approve is refused."""
    (tmp_path / "rb.yaml").write_text(
        "id: rb\ntrigger: {source: guardduty}\nsteps:\n"
        "  - {id: a, actuator: test.wipe, with: {target: t1}, approval: {required: false}}\n"
        "  - {id: b, actuator: test.wipe, with: {target: t1}, approval: {on_timeout: approve}}\n")
    reasons = [e.reason for e in _errors(tmp_path)]
    assert any("always requires approval" in r for r in reasons)
    assert any("cannot be approved by timeout" in r for r in reasons)


def test_every_problem_in_every_file_is_listed(tmp_path):
    """Validation reports all broken files, plus duplicate ids, not only the first error."""
    _write(tmp_path, "a", op="bad")
    _write(tmp_path, "b", user="'no spaces allowed'")
    (tmp_path / "sub").mkdir()
    _write(tmp_path / "sub", "c")
    _write(tmp_path, "c")
    errors = _errors(tmp_path)
    assert {e.path.rsplit("/", 1)[-1] for e in errors} == {"a.yaml", "b.yaml", "c.yaml"}
    assert any("duplicate runbook id 'c'" in e.reason for e in errors)


def test_validate_command_json_lists_errors(tmp_path):
    """`runbooks validate --json` exits 3 and lists each error with path, line and column."""
    _write(tmp_path, user="'bad name!'")
    result = CliRunner().invoke(app, ["runbooks", "validate", str(tmp_path), "--json"])
    assert result.exit_code == 3
    doc = json.loads(result.stdout)
    assert doc["ok"] is False
    assert doc["errors"][0]["line"] == 10


def test_durations_accept_units():
    """Windows and timeouts take seconds or 500ms / 30s / 15m / 1h / 2d."""
    rb = Runbook.model_validate({"id": "x", "trigger": {}, "window": "15m", "cooldown": "1h",
                                 "steps": [{"id": "s", "actuator": "a", "timeout": "500ms",
                                            "approval": {"timeout": "2d"}}]})
    assert (rb.window, rb.cooldown, rb.steps[0].timeout, rb.steps[0].approval.timeout) == (900, 3600, 0.5, 172800)
    with pytest.raises(ValueError, match="not a duration"):
        Runbook.model_validate({"id": "x", "trigger": {}, "window": "soon", "steps": [{"id": "s", "actuator": "a"}]})


def test_committed_schema_is_current(runbooks_dir):
    """runbooks/runbook.schema.json equals `responder runbooks schema` output (regenerate it with that command)."""
    committed = (runbooks_dir / "runbook.schema.json").read_text()
    assert committed == runbook_schema_text()
    assert CliRunner().invoke(app, ["runbooks", "schema"]).stdout == committed


def test_schema_rejects_unknown_keys(runbooks_dir):
    """The schema forbids unknown keys at every level, as the loader does."""
    schema = json.loads((runbooks_dir / "runbook.schema.json").read_text())
    assert schema["additionalProperties"] is False
    assert all(d.get("additionalProperties") is False for d in schema["$defs"].values() if d.get("type") == "object")


def test_shipped_runbooks_pass_full_validation(runbooks_dir):
    """The shipped runbooks pass every check with the real registry."""
    from responder.actuators import registry

    assert load_runbooks(runbooks_dir, registry)


def test_approve_without_keys_explains_configuration(monkeypatch):
    """`responder approve` without Kafka or an approval key exits 3 and names the settings to set."""
    for name in list(os.environ):
        if name.startswith("RESPONDER_"):
            monkeypatch.delenv(name)
    result = CliRunner().invoke(app, ["approve", "inc", "step", "--by", "alice"])
    assert result.exit_code == 3
    assert "RESPONDER_APPROVAL_KEYS" in result.output


def test_validate_on_a_directory_without_runbooks_fails(tmp_path):
    """`runbooks validate` on a directory holding no runbook exits 3 saying so (it used to pass silently)."""
    result = CliRunner().invoke(app, ["runbooks", "validate", str(tmp_path)])
    assert result.exit_code == 3
    assert "no runbooks" in result.stderr


async def test_service_without_runbooks_warns(tmp_path):
    """A service started on a directory with no runbooks logs a no_runbooks warning naming the directory."""
    from structlog.testing import capture_logs

    from responder.service import Service
    from responder.settings import Settings

    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", runbooks_dir=tmp_path)
    with capture_logs() as logs:
        service = Service(settings)
    service.recorder.close()
    await service.close_unstarted()
    assert [e["runbooks_dir"] for e in logs if e["event"] == "no_runbooks"] == [str(tmp_path)]


ESCALATION = """\
on_failure:
  - id: {id}
    actuator: {actuator}
    with:
      topic: responder.notifications
      title: "${{failure.step}} failed"
      fields: {{error: "${{{path}}}", incident: "${{incident.id}}"}}
"""


def _escalation(*, id="tell-oncall", actuator="notify.kafka.publish_message", path="failure.error") -> str:
    return ESCALATION.format(id=id, actuator=actuator, path=path)


def test_validate_warns_when_containment_has_no_escalation(tmp_path):
    """A containment runbook without on_failure passes with a `!` warning at its steps; with one it is clean."""
    _write(tmp_path, "silent")
    _write(tmp_path, "loud", extra=_escalation())
    result = CliRunner().invoke(app, ["runbooks", "validate", str(tmp_path), "--json"])
    assert result.exit_code == 0
    [warning] = json.loads(result.stdout)["warnings"]
    assert warning["path"].endswith("silent.yaml")
    assert warning["line"] == 7
    assert "no on_failure escalation" in warning["reason"]
    text = CliRunner().invoke(app, ["runbooks", "validate", str(tmp_path)])
    assert text.exit_code == 0
    assert "! " in text.stderr
    assert "silent.yaml:7" in text.stderr


@pytest.mark.parametrize(("kw", "needle"), [
    ({"path": "failure.nope"}, "failure fields are step, actuator, target, status, error, code"),
    ({"path": "steps.deactivate-key.result.x"}, "paths start with one of event, incident, failure"),
    ({"id": "deactivate-key"}, "duplicate step id 'deactivate-key'"),
    ({"actuator": "aws.ec2.terminate_everything"}, "unknown actuator"),
    ({"actuator": "test.wipe"}, "escalation runs unattended; test.wipe needs approval"),
])
def test_escalation_steps_are_checked(tmp_path, kw, needle):
    """on_failure steps read only event, incident and failure; own ids; known, unattended actuators."""
    _write(tmp_path, extra=_escalation(**kw))
    errors = _errors(tmp_path)
    assert [e.line for e in errors if needle in e.reason][:1] >= [12]


def test_shipped_runbooks_all_escalate(runbooks_dir):
    """Every shipped runbook has an on_failure block, so `runbooks validate` warns about none of them."""
    from responder.actuators import registry
    from responder.catalog import runbook_warnings

    assert runbook_warnings(runbooks_dir, registry) == []
    assert all(rb.on_failure for rb in load_runbooks(runbooks_dir, registry))


def test_a_step_output_must_be_declared_by_its_actuator(tmp_path):
    """Reading `${steps.<id>.result.<key>}` that the step's actuator does not declare fails, naming its outputs."""
    _write(tmp_path, extra="""\
  - id: tell
    actuator: notify.webhook.post_message
    with: {url: "https://hooks.example.com/x", key_id: k1, title: t, fields: {s: "${steps.deactivate-key.result.nope}"}}
""")
    [err] = _errors(tmp_path)
    assert "aws.iam.deactivate_access_key has no output 'nope'; outputs: none" in err.reason
    assert err.line == 14


@pytest.mark.parametrize(("field", "warned"), [
    ("event.attributes.envelope_mismach", True),
    ("event.attributes.envelope_mismatch", False),
])
def test_unknown_event_attribute_is_a_warning_naming_the_valid_ones(tmp_path, field, warned):
    """A typo under event.attributes.* warns at file:line:col with the source's attribute names; exit stays 0."""
    _write(tmp_path, field=field, op="eq", value="true")
    result = CliRunner().invoke(app, ["runbooks", "validate", str(tmp_path), "--json"])
    assert result.exit_code == 0
    warnings = [w for w in json.loads(result.stdout)["warnings"] if "event.attributes" in w["reason"]]
    if not warned:
        assert warnings == []
        return
    [w] = warnings
    assert (w["line"], w["column"]) == (5, 7)
    assert "no decoder of guardduty sets attribute 'envelope_mismach'" in w["reason"]
    assert "did you mean 'envelope_mismatch'" in w["reason"]
    assert "valid: action_type, api, archived" in w["reason"]


def test_shipped_runbooks_read_only_declared_attributes():
    """Every event.attributes.* the shipped runbooks read is declared by a decoder of their trigger's sources."""
    from pathlib import Path

    from responder.actuators import registry
    from responder.catalog import runbook_warnings

    assert runbook_warnings(Path(__file__).resolve().parents[2] / "runbooks", registry) == []
