"""A `group_by` that could never group refuses the runbook at load with file, line and the valid choices; an event
whose field is present in the model but missing from the event is still grouped on its own at run time."""

from __future__ import annotations

from pathlib import Path

import pytest

from responder.actuators import registry
from responder.catalog import check_directory, load_runbooks
from responder.errors import RunbookError

RB = """\
id: rb
version: 1
trigger:
  source: {source}
group_by: "{group_by}"
steps:
  - id: page
    actuator: notify.kafka.publish_message
    with: {{topic: responder.notifications, title: "seen", severity: high}}
"""


def _errors(tmp_path: Path, group_by: str, source: str = "falco") -> list[RunbookError]:
    (tmp_path / "rb.yaml").write_text(RB.format(source=source, group_by=group_by))
    return check_directory(tmp_path, registry)[1]


@pytest.mark.parametrize(("group_by", "says"), [
    ("${event.attributes.hostnme}", "no decoder of falco sets attribute 'hostnme' (did you mean 'hostname'?)"),
    ("${event.account}:${event.attributes.role}", "no decoder of falco sets attribute 'role'"),
])
def test_group_by_on_an_attribute_no_source_of_the_trigger_sets_fails_at_its_line(tmp_path, group_by, says):
    """It loaded with a warning, and every event then opened its own `ungrouped:` incident (one page per event)."""
    [err] = _errors(tmp_path, group_by)
    assert (err.path, err.line) == (str(tmp_path / "rb.yaml"), 5)
    assert says in err.reason
    assert "valid:" in err.reason
    assert "hostname" in err.reason


@pytest.mark.parametrize(("group_by", "choices"), [
    ("${event.severity}", ["event.severity.label", "event.severity.score"]),
    ("${event.resources}", ["event.resources.0.id", "event.resources.0.attributes.<name>"]),
    ("${event.threat}", ["event.threat.category"]),
    ("${event.resource.bucket}", ["event.resource.bucket.arn", "event.resource.bucket.id"]),
    ("${event.resource}", ["event.resource.bucket.id", "event.resource.access_key.id"]),
    ("${event.attributes}", ["event.attributes.<name>"]),
])
def test_group_by_on_a_whole_object_fails_at_load_with_the_single_values_below_it(tmp_path, group_by, choices):
    """A whole object or list rendered as its text: two events grouped only when every field of it was equal."""
    [err] = _errors(tmp_path, group_by, source="guardduty")
    assert err.line == 5
    assert "not a single value" in err.reason
    assert "valid choices: " in err.reason
    assert all(choice in err.reason.split("valid choices: ")[1].split(", ") for choice in choices)


@pytest.mark.parametrize("group_by", ["${event.incident_key}", "${event.account}:${event.resource.bucket.id}",
                                      "${event.attributes.hostname}:${event.severity.label}"])
def test_group_by_on_single_values_the_model_has_loads(tmp_path, group_by):
    """Model fields that one event may lack (present but empty) are still grouped at run time, as before."""
    assert _errors(tmp_path, group_by) == []


def test_every_shipped_runbook_still_loads():
    """The shipped runbooks group by single values their sources set."""
    assert load_runbooks(Path(__file__).parents[2] / "runbooks", registry)


@pytest.mark.parametrize(("trigger", "group_by"), [
    ("source: '*'", "${event.attributes.hostname}"),  # Falco's, one of every source
    ("source: '*'\n  category: container_shell", "${event.attributes.hostname}"),  # Falco produces the category
    ("source: '*'\n  category: backdoor_credential", "${event.attributes.event_name}"),  # CloudTrail's, one of several
])
def test_group_by_on_an_attribute_one_of_several_trigger_sources_declares_loads(tmp_path, trigger, group_by):
    """The declared names are the union over the trigger's sources: events of the others group on their own."""
    (tmp_path / "rb.yaml").write_text(RB.replace("source: {source}", trigger).format(group_by=group_by))
    assert check_directory(tmp_path, registry)[1] == []


def test_group_by_text_holding_the_account_fallback_form_fails_at_load(tmp_path):
    """A `group_by` written with `no-account(` in its own text would group every event on its own: refused."""
    [err] = _errors(tmp_path, "no-account(x):${event.attributes.hostname}")
    assert "no-account(" in err.reason
    assert err.line == 5
