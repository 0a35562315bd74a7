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
    with:
      user_name: "{user}"
      access_key_id: "${{event.resource.access_key.id}}"
"""


def _errors(tmp_path: Path, **kw: str) -> list[RunbookError]:
    fields = {"version": "1", "source": "guardduty", "category": "credential_compromise", "user": "${event.actor}",
              **kw}
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
