"""Runbooks that loaded but never worked as written now fail at load with file:line and what to write."""

from __future__ import annotations

from pathlib import Path

import pytest

from responder.actuators import registry
from responder.catalog import check_directory
from responder.errors import RunbookError

RB = """\
id: rb
version: {version}
trigger:
  source: {source}
  category: {category}
steps:
  - id: deactivate-key
    actuator: aws.iam.deactivate_access_key
    with: {{user_name: "${{event.actor}}", access_key_id: "${{event.resource.access_key.id}}"}}
  - id: tell
    actuator: notify.kafka.publish_message
    with:
      topic: responder.notifications
      title: "{title}"
"""


def _errors(tmp_path: Path, **kw: str) -> list[RunbookError]:
    fields = {"version": "1", "source": "guardduty", "category": "credential_compromise",
              "title": "key ${event.resource.access_key.id} disabled", **kw}
    (tmp_path / "rb.yaml").write_text(RB.format(**fields))
    return check_directory(tmp_path, registry)[1]


@pytest.mark.parametrize("version", ["1", "0", "12", "2024"])
def test_a_plain_decimal_version_loads(tmp_path, version):
    """`version: 12` (digits, no leading zero) loads as before."""
    assert _errors(tmp_path, version=version) == []


@pytest.mark.parametrize(("version", "read"), [("010", "8"), ("1.10", "1.1"), ("0x1f", "31"), ("1_000", "1000"),
                                               ("1e3", "'1e3'"), ('"2"', "'2'"), ("v2", "'v2'"), ("true", "True"),
                                               ("-1", "-1"), ("~", "None")])
def test_a_version_not_written_as_a_plain_decimal_fails_at_its_line(tmp_path, version, read):
    """`version: 010` (YAML 1.1 octal: 8), `1.10` (the float 1.1), quoted or other forms fail at load at their line."""
    [err] = _errors(tmp_path, version=version)
    assert (err.line, err.column) == (2, 10)
    assert f"version: {version} is read as {read}" in err.reason
    assert "write a plain decimal integer" in err.reason


def test_an_octal_looking_version_is_told_the_decimal_to_write(tmp_path):
    """`version: 010` is told to write `version: 10`, the number it looks like."""
    [err] = _errors(tmp_path, version="010")
    assert "version: 10" in err.reason


@pytest.mark.parametrize(("source", "category"), [("guardduty", "credential_compromise"), ("'*'", "llmjacking"),
                                                  ("falco", "container_shell"), ("guardduty", "[]"),
                                                  ("cloud*", "[defense_evasion_logging, llmjacking]")])
def test_a_category_one_of_its_sources_produces_loads(tmp_path, source, category):
    """A trigger category that a source matched by `trigger.source` can produce loads as before."""
    assert _errors(tmp_path, source=source, category=category) == []


def test_a_category_its_source_never_produces_fails_at_its_line(tmp_path):
    """`source: guardduty` with `category: llmjacking` never matched; it now fails with what guardduty produces."""
    [err] = _errors(tmp_path, source="guardduty", category="llmjacking")
    assert (err.line, err.column) == (5, 13)
    assert "trigger.category 'llmjacking': no decoder of guardduty produces it" in err.reason
    assert "they produce anomalous_credential_use, credential_compromise, credential_exfiltration" in err.reason
    assert "(produced by: ocsf, cloudtrail, falco," in err.reason


def test_each_category_of_a_list_is_checked_at_its_own_line(tmp_path):
    """In `category: [credential_compromise, llmjacking]` only the one guardduty never produces is refused."""
    [err] = _errors(tmp_path, source="guardduty", category="\n    - credential_compromise\n    - llmjacking")
    assert (err.line, err.column) == (7, 7)
    assert "'llmjacking'" in err.reason


def test_a_category_on_a_source_without_a_threat_table_fails(tmp_path):
    """A decoder that sets no threat (google-secops) never matches a category: refused, saying it produces none."""
    [err] = _errors(tmp_path, source="google-secops", category="credential_compromise")
    assert "no decoder of google-secops produces it; they produce no category" in err.reason


@pytest.mark.parametrize("written", ["${event.actor }", "${ event.actor}", "${event.actor", "user-${event.actor",
                                     "${event.actor}-${ event.account}", "${}", "${event actor}"])
def test_a_malformed_placeholder_fails_at_its_line(tmp_path, written):
    """A `${…}` that is not a placeholder stayed literal and the step acted on that text; it now fails at load."""
    [err] = _errors(tmp_path, title=written)
    assert (err.line, err.column) == (14, 14)
    assert "malformed placeholder '${" in err.reason
    assert "${namespace.path}" in err.reason


@pytest.mark.parametrize(("written", "hint"), [("${event.actor }", "did you mean ${event.actor}?"),
                                               ("${ event.actor}", "did you mean ${event.actor}?"),
                                               ("${event.actor", "did you mean ${event.actor}?"),
                                               ("${event.actr}x${event.actr", "did you mean ${event.actor}?")])
def test_a_malformed_placeholder_names_the_nearest_valid_field(tmp_path, written, hint):
    """The refusal names the nearest placeholder that resolves (the "did you mean" of the attribute warnings)."""
    [err, *_] = _errors(tmp_path, title=written)
    assert hint in err.reason


@pytest.mark.parametrize("written", ["$", "cost $5", "$$", "$${event.actor}", "{event.actor}", "$event.actor",
                                     "a-${event.actor}-}", "x${event.resource.access_key.id}y", "100%", "}{"])
def test_dollar_signs_that_are_not_placeholders_still_load(tmp_path, written):
    """A `$` not followed by `{`, or text around a well-formed placeholder, loads as before."""
    assert _errors(tmp_path, title=written) == []


def test_a_malformed_group_by_fails(tmp_path):
    """`group_by: "${event.actor } "` would have grouped every event under one literal key: refused."""
    (tmp_path / "rb.yaml").write_text(RB.format(version="1", source="guardduty", category="credential_compromise",
                                                title="t") + 'group_by: "k-${event.incident_key"\n')
    [err] = check_directory(tmp_path, registry)[1]
    assert err.line == 15
    assert "did you mean ${event.incident_key}?" in err.reason


def test_a_malformed_placeholder_in_on_failure_fails(tmp_path):
    """An escalation step's malformed `${failure.error }` is refused too, pointing at `${failure.error}`."""
    (tmp_path / "rb.yaml").write_text(RB.format(version="1", source="guardduty", category="credential_compromise",
                                                title="t") + (
        "on_failure:\n  - id: page\n    actuator: notify.kafka.publish_message\n"
        "    with: {topic: t, title: \"failed: ${failure.error }\"}\n"))
    [err] = check_directory(tmp_path, registry)[1]
    assert err.line == 18
    assert "did you mean ${failure.error}?" in err.reason


@pytest.mark.parametrize(("written", "line"), [("<<: {version: 010}", 1), ("<<: [{id: x}, {version: 010}]", 1),
                                               ("version: !!str 3", 1)])
def test_a_version_merged_in_or_tagged_as_text_is_refused_too(tmp_path, written, line):
    """`<<: {version: 010}` (a merge key: YAML reads 8) and `version: !!str 3` (text) fail like `version: 010`."""
    (tmp_path / "rb.yaml").write_text(written + "\n" + RB.format(
        version="1", source="guardduty", category="credential_compromise", title="t").replace("version: 1\n", ""))
    [err] = check_directory(tmp_path, registry)[1]
    assert err.line == line
    assert "write a plain decimal integer" in err.reason


def test_a_version_written_over_a_merged_one_is_the_one_checked(tmp_path):
    """`version: 2` written beside `<<: {version: 010}` wins in YAML, so it loads; the reverse is refused."""
    body = RB.format(version="1", source="guardduty", category="credential_compromise", title="t").replace(
        "version: 1\n", "")
    (tmp_path / "rb.yaml").write_text("<<: {version: 010}\nversion: 2\n" + body)
    assert check_directory(tmp_path, registry)[1] == []
    (tmp_path / "rb.yaml").write_text("<<: {version: 1}\nversion: 010\n" + body)
    [err] = check_directory(tmp_path, registry)[1]
    assert err.line == 2


@pytest.mark.parametrize("version", ["²", "0" + "7" * 5000])
def test_a_version_no_int_can_show_is_refused_not_a_crash(tmp_path, version):
    """A runbook `version` that int() refuses or cannot print is a version error at its line, not a crash."""
    [err] = _errors(tmp_path, version=version)
    assert (err.line, err.column) == (2, 10)
    assert "write a plain decimal integer" in err.reason
    assert len(err.reason) < 400


@pytest.mark.parametrize("line", ["description: 2024-13-45", "owner: 1" + "0" * 5000])
def test_a_value_yaml_cannot_construct_is_an_error_at_its_line(tmp_path, line):
    """A YAML value safe_load cannot construct is an invalid-YAML error at its line, not a ValueError."""
    (tmp_path / "rb.yaml").write_text(RB.format(version="1", source="guardduty", category="credential_compromise",
                                                title="t").replace("version: 1\n", line + "\n"))
    [err] = check_directory(tmp_path, registry)[1]
    assert (err.line, err.column) == (2, line.index(" ") + 2)
    assert err.reason.startswith("invalid YAML value: ")


@pytest.mark.parametrize("version", ["12345678901234567890123", "9007199254740992"])
def test_an_absurdly_large_version_fails_at_its_line_saying_what_to_write(tmp_path, version):
    """A 23-digit version loaded (and no JSON reader keeps it exact); past 2**53 - 1 it fails at its line."""
    [err] = _errors(tmp_path, version=version)
    assert (err.line, err.column) == (2, 10)
    assert f"version: {version} is read as {version}" in err.reason
    assert "at most 9007199254740991" in err.reason
    assert "write a plain decimal integer" in err.reason


def test_the_largest_version_loads(tmp_path):
    """2**53 - 1, the largest integer every JSON reader keeps exact, is still a version."""
    assert _errors(tmp_path, version="9007199254740991") == []


def test_the_schema_types_version_as_a_bounded_integer():
    """runbook.schema.json said `integer | string` although the loader refuses a quoted version."""
    from responder.schema import runbook_schema

    prop = runbook_schema()["properties"]["version"]
    assert (prop.get("type"), prop.get("minimum"), prop.get("maximum")) == ("integer", 0, 9007199254740991)
    assert "anyOf" not in prop
