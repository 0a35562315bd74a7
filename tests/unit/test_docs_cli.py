"""`responder docs`: the reference tables generated from the code, and the check that keeps them current."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from responder.actuators import registry
from responder.cli import app
from responder.settings import Settings
from tests.conftest import ROOT


def _copy(tmp_path: Path) -> Path:
    """A repository root holding copies of the generated files (and the runbooks they are made from)."""
    shutil.copytree(ROOT / "runbooks", tmp_path / "runbooks")
    (tmp_path / "docs").mkdir()
    for name in ("actuators.md", "configuration.md"):
        shutil.copy(ROOT / "docs" / name, tmp_path / "docs" / name)
    return tmp_path


def test_committed_copies_are_current():
    """`responder docs --check` passes on the repository: run `responder docs` and commit when it fails."""
    result = CliRunner().invoke(app, ["docs", "--check", "--root", str(ROOT)])
    assert result.exit_code == 0, result.output


def test_check_names_a_stale_copy_and_changes_nothing(tmp_path):
    """A hand-edited generated row fails --check (exit 1, file named, untouched); `responder docs` repairs it."""
    root = _copy(tmp_path)
    page = root / "docs" / "configuration.md"
    row = "| `RESPONDER_MAX_BATCH` | int (≥ 1) | `500` |"
    stale = page.read_text().replace(row, row.replace("500", "50"))
    assert stale != page.read_text()
    page.write_text(stale)

    result = CliRunner().invoke(app, ["docs", "--check", "--root", str(root)])
    assert result.exit_code == 1
    assert "docs/configuration.md (settings)" in result.output
    assert page.read_text() == stale

    assert CliRunner().invoke(app, ["docs", "--root", str(root)]).exit_code == 0
    assert page.read_text() == (ROOT / "docs" / "configuration.md").read_text()
    assert CliRunner().invoke(app, ["docs", "--check", "--root", str(root)]).exit_code == 0


def test_a_new_runbook_makes_the_catalogue_stale(tmp_path):
    """Adding a runbook file without regenerating fails --check; regenerating adds its row with its actuators."""
    root = _copy(tmp_path)
    (root / "runbooks" / "kms-key-misuse.yaml").write_text(
        "id: kms-key-misuse\ndescription: Disable a misused KMS key.\ntrigger: {source: guardduty, type: 'Kms:*'}\n"
        "steps:\n  - id: disable\n    actuator: aws.kms.disable_key\n"
        "    with: {key_id: 1234abcd-12ab-34cd-56ef-1234567890ab}\n")
    assert CliRunner().invoke(app, ["docs", "--check", "--root", str(root)]).exit_code == 1
    assert CliRunner().invoke(app, ["docs", "--root", str(root)]).exit_code == 0
    [row] = [line for line in (root / "runbooks" / "README.md").read_text().splitlines() if "kms-key-misuse" in line]
    assert "`aws.kms.disable_key`" in row
    assert "Disable a misused KMS key." in row


def test_missing_markers_exit_3_naming_the_file(tmp_path):
    """A page without its generated block is a configuration error naming the file and the marker to add."""
    root = _copy(tmp_path)
    (root / "docs" / "actuators.md").write_text("# Actuators\n")
    result = CliRunner().invoke(app, ["docs", "--root", str(root)])
    assert result.exit_code == 3
    assert "docs/actuators.md" in result.output
    assert "BEGIN GENERATED" in result.output


def test_every_setting_is_described():
    """Every Settings field has a description, so the generated reference explains every variable."""
    assert [name for name, field in Settings.model_fields.items() if not (field.description or "").strip()] == []


def test_settings_reference_lists_every_variable():
    """docs/configuration.md has one row per setting, named by its environment variable."""
    text = (ROOT / "docs" / "configuration.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| `RESPONDER_")]
    assert [r.split("`")[1] for r in rows] == [f"RESPONDER_{n.upper()}" for n in Settings.model_fields]


def test_actuator_table_documents_every_actuator():
    """docs/actuators.md has a row for every registered actuator with its exact IAM actions."""
    rows = {line.split("`")[1]: line for line in (ROOT / "docs" / "actuators.md").read_text().splitlines()
            if line.startswith("| `") and line.split("`")[1] in registry}
    assert sorted(rows) == registry.names()
    for actuator in registry:
        assert all(f"`{p}`" in rows[actuator.name] for p in actuator.permissions), actuator.name
