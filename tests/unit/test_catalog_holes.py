"""Runbooks that loaded but could not work (or changed meaning) now fail at load with file:line and the choices."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from responder.actuators import registry
from responder.catalog import check_directory
from responder.cli import app
from responder.errors import RunbookError

RB = """\
id: rb
trigger:
  source: {source}
  conditions:
    - {{field: {field}, op: {op}, value: {value}}}
steps:
  - id: deactivate-key
    actuator: aws.iam.deactivate_access_key
    with:
      user_name: "${{event.actor}}"
      access_key_id: "${{event.resource.access_key.id}}"
"""


def _errors(tmp_path: Path, text: str | None = None, *, raw: bytes | None = None, **kw: str) -> list[RunbookError]:
    path = tmp_path / "rb.yaml"
    if raw is not None:
        path.write_bytes(raw)
    else:
        fields = {"source": "guardduty", "field": "event.severity.score", "op": "ge", "value": "5", **kw}
        path.write_text(text if text is not None else RB.format(**fields))
    return check_directory(tmp_path, registry)[1]


def test_a_duplicate_key_is_an_error_at_its_second_line(tmp_path):
    """`mode: dry_run` then `mode: enforce` used to load as enforce silently; now the second key is an error."""
    [err] = _errors(tmp_path, RB.format(source="guardduty", field="event.actor", op="exists", value="true")
                    + "mode: dry_run\nmode: enforce\n")
    assert "duplicate key 'mode'" in err.reason
    assert (err.line, err.column) == (13, 1)


def test_a_merge_key_may_override_what_it_merges(tmp_path):
    """A `<<:` merge key is not a duplicate: keys beside it override the merged ones, as YAML defines."""
    text = RB.format(source="guardduty", field="event.actor", op="exists", value="true").replace(
        "    with:\n", "    with:\n      <<: {user_name: x}\n")
    assert _errors(tmp_path, text) == []


def test_an_alias_bomb_fails_at_load_without_expanding(tmp_path):
    """Nested aliases that expand to millions of nodes are refused at load (they hung validate and every event)."""
    lines = ["        a0: &a0 [x]"] + [
        f"        a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    text = ("id: rb\ntrigger: {source: guardduty}\nsteps:\n  - id: s\n    actuator: notify.kafka.publish_message\n"
            "    with:\n      topic: t\n      title: t\n      fields:\n" + "\n".join(lines) + "\n")
    [err] = _errors(tmp_path, text)
    assert "aliases expand to more than" in err.reason
    assert err.line is not None


def test_a_file_that_is_not_utf8_is_a_runbook_error(tmp_path):
    """A runbook file with invalid UTF-8 is reported with its path and exit 3, not a UnicodeDecodeError traceback."""
    [err] = _errors(tmp_path, raw=b"id: rb\ndescription: \xff\xfe\n")
    assert "not UTF-8" in err.reason
    result = CliRunner().invoke(app, ["runbooks", "validate", str(tmp_path)])
    assert result.exit_code == 3
    assert "Traceback" not in result.output


def test_a_trigger_source_that_no_decoder_produces_is_an_error(tmp_path):
    """`source: gaurdduty` could never match an event; it fails at its line naming the valid sources."""
    [err] = _errors(tmp_path, source="gaurdduty")
    assert "matches no event source" in err.reason
    assert "guardduty" in err.reason
    assert "falco" in err.reason
    assert (err.line, err.column) == (3, 11)


def test_a_trigger_source_glob_matching_some_source_loads(tmp_path):
    """A glob naming some decoder's source (`guard*`, `*`) is fine."""
    assert _errors(tmp_path, source="'guard*'") == []
    assert _errors(tmp_path, source="'*'") == []


@pytest.mark.parametrize("duration", [".inf", "1.0e+20"])
@pytest.mark.parametrize("where", ["window: {}\n", "cooldown: {}\n", "count_window: {}\n"])
def test_a_duration_too_long_to_compute_with_fails_at_load(tmp_path, duration, where):
    """An infinite or astronomically long window loaded, then raised OverflowError on the first event's timedelta."""
    [err] = _errors(tmp_path, RB.format(source="guardduty", field="event.actor", op="exists", value="true")
                    + where.format(duration))
    assert "at most" in err.reason
    assert err.line == 12


def test_an_approval_that_never_expires_fails_at_load(tmp_path):
    """approval.timeout: .inf loaded, then failed converting the deadline to a date; approvals must expire."""
    [err] = _errors(tmp_path, RB.format(source="guardduty", field="event.actor", op="exists", value="true")
                    + "    approval: {required: true, timeout: .inf}\n")
    assert "at most" in err.reason
    assert err.line == 12


@pytest.mark.parametrize(("field", "op", "value", "needle"), [
    ("event.account", "eq", "123456789012", "event.account is text"),  # unquoted: YAML reads an int
    ("event.account", "in", "[123456789012, '210987654321']", "event.account is text"),
    ("event.severity.score", "ge", "'7'", "event.severity.score is a number"),
    ("event.severity.label", "eq", "hihg", "valid choices: info, low, medium, high, critical"),
    ("event.threat.category", "in", "[llmjacking, lmjacking]", "valid choices:"),
    ("event.actor", "eq", "no", "event.actor is text"),  # YAML 1.1: `no` is false
    ("event.severity.score", "regex", "'^9'", "event.severity.score is a number; 'regex' tests text"),
    ("event.severity.score", "glob", "'9*'", "valid operators on it: eq, ne, in, not_in, gt, ge, lt, le, exists"),
    ("event.severity.score", "cidr", "10.0.0.0/8", "event.severity.score is a number; 'cidr' tests text"),
    ("event.resources", "regex", "x", "event.resources is a list; 'regex' tests text and never matches it; test a "
                                      "single value below it: event.resources.0.arn"),
    ("event.severity", "glob", "'*'", "test a single value below it: event.severity.label, event.severity.score"),
    ("event.account", "contains", "1111", "event.account is text; 'contains' looks for text in it and 1111 (int)"),
    ("event.severity.score", "contains", "9", "'contains' tests text or a list and never matches it"),
    ("event.threat.techniques", "contains", "1562", "event.threat.techniques is a list of text; 1562 (int) is never"),
    ("event.time", "ne", "'2026-01-01'", "not a time with its zone; an event's time reads as UTC text"),
    ("event.time", "in", "['2026-01-01T00:00:00']", "not a time with its zone; an event's time reads as UTC text"),
    ("event.time", "glob", "'2026-01-01T0[0-5]:*+00:00'", "write '2026-01-01T0[0-5]:*Z'"),
    ("event.time", "regex", r"'T0[0-5]:\d\d:\d\d\+00:00$'", r"write 'T0[0-5]:\d\d:\d\dZ$'"),
    ("event.time", "contains", "'+00:00'", "write 'Z'"),
    ("event.time", "glob", "'2026-01-01T03:00:00+00:00'", "write '2026-01-01T03:00:00Z'"),
    ("event.time", "glob", "'*-05:00'", "convert the time to UTC and write it with Z"),
])
def test_a_condition_value_that_can_never_match_its_field_fails(tmp_path, field, op, value, needle):
    """A condition that can never match its typed field (value type, enum, text op, contains, time form) fails."""
    [err] = _errors(tmp_path, field=field, op=op, value=value)
    assert needle in err.reason, err.reason
    assert (err.line, err.column) == (5, 7)


@pytest.mark.parametrize(("field", "op", "value"), [
    ("event.account", "eq", "'123456789012'"),
    ("event.actor", "eq", "null"),
    ("event.severity.score", "ge", "7"),
    ("event.severity.score", "in", "[7, 8.5]"),
    ("event.severity.label", "in", "[high, critical]"),
    ("event.attributes.anything", "eq", "7"),
    ("event.time", "ge", "'2024-01-01T00:00:00Z'"),
    ("event.account", "regex", "'^1111'"),
    ("event.time", "glob", "'2026-*Z'"),
    ("event.time", "eq", "'2026-01-01T00:00:00Z'"),
    ("event.time", "ge", "'2026-01'"),
    ("event.time", "eq", "'2026-01-01T00:00:00+00:00'"),
    ("event.time", "lt", "'2026-01-01T05:30:00+05:30'"),
    ("event.time", "in", "['2026-01-01T00:00:00.5Z', '2026-01-01T00:00:00-05:00']"),
    ("event.time", "glob", "'2026-01-0[1-5]T*'"),
    ("event.severity.label", "glob", "'hi*'"),
    ("event.resources.0.id", "cidr", "10.0.0.0/8"),
    ("event.account", "contains", "'1111'"),
    ("event.threat.techniques", "contains", "T1562.008"),
    ("event.attributes.anything", "regex", "x"),
    ("event.attributes.anything", "contains", "7"),
    ("event.severity.original", "glob", "'*'"),
])
def test_a_condition_value_of_the_fields_type_loads(tmp_path, field, op, value):
    """Values that fit the field's type, text operators on text, free-form values and `…Z` times still load."""
    assert _errors(tmp_path, field=field, op=op, value=value) == []


@pytest.mark.parametrize("value", ["'false'", "'no'", "0", "[]"])
def test_exists_takes_only_true_false_or_nothing(tmp_path, value):
    """`exists: 'false'` was truthy (the field must exist), the opposite of what it says; only true/false/null load."""
    [err] = _errors(tmp_path, field="event.actor", op="exists", value=value)
    assert "operator 'exists' takes true or false" in err.reason


@pytest.mark.parametrize("where", ["window: true\n", "cooldown: false\n", "count_window: true\n",
                                   "    approval: {required: true, timeout: true}\n", "    timeout: true\n"])
def test_a_boolean_duration_fails_at_load(tmp_path, where):
    """`window: true` loaded as a 1 s window (pydantic's lax float); a boolean is no duration, at its line."""
    [err] = _errors(tmp_path, RB.format(source="guardduty", field="event.actor", op="exists", value="true") + where)
    assert "not a duration" in err.reason, err.reason
    assert err.line == 12


@pytest.mark.parametrize(("value", "column"), [("2026-01-01T00:00:00Z", 42), ("2026-01-01", 42),
                                               ("[2026-01-01T00:00:00Z]", 43)])
def test_an_unquoted_time_value_is_one_error_saying_to_quote_it(tmp_path, value, column):
    """An unquoted YAML timestamp or date as a condition value gave 13 pydantic errors; now one, at its line: quote."""
    [err] = _errors(tmp_path, field="event.time", op="ge" if value[0] != "[" else "in", value=value)
    assert "quote it" in err.reason, err.reason
    assert "'2026-01-01" in err.reason
    assert (err.line, err.column) == (5, column)
