"""`responder events normalise` and `events formats` as a user runs them."""

from __future__ import annotations

from pathlib import Path

import orjson
from typer.testing import CliRunner

from responder.cli.app import app

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "events"
runner = CliRunner()


def test_normalise_json_prints_one_document_with_the_documented_fields() -> None:
    """`--json` prints one document listing each event of each file with source, type, severity, time, key."""
    result = runner.invoke(app, ["events", "normalise", "--json", str(FIXTURES / "cloudtrail_records_invalid_ip.json"),
                                 str(FIXTURES / "mixed.jsonl")])
    assert result.exit_code == 0, result.output
    doc = orjson.loads(result.stdout)
    assert doc["ok"] is True
    assert doc["errors"] == []
    lines = doc["events"]
    assert [(d["source"], d["type"]) for d in lines] == [
        ("cloudtrail", "secretsmanager.amazonaws.com/GetSecretValue"),
        ("cloudtrail", "kms.amazonaws.com/ScheduleKeyDeletion"),
        ("responder.drift", "model.drift"),
        ("splunk", "x"),
    ]
    first = lines[0]
    assert {"severity", "severity_label", "time", "resources", "incident_key"} <= set(first)
    assert first["resources"][0] == {"kind": "access_key", "id": "ASIAEXAMPLEKEY000003"}
    assert first["severity_label"] == "low"


def test_normalise_fails_with_the_reason_when_a_file_cannot_be_decoded(tmp_path: Path) -> None:
    """An unknown shape exits 3 (bad input) naming the file and the reason; the good file is still printed."""
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": "world"}')
    result = runner.invoke(app, ["events", "normalise", str(FIXTURES / "drift_detected.json"), str(bad)])
    assert result.exit_code == 3
    assert "bad.json" in result.output
    assert "unknown_shape" in result.output
    assert "model.drift" in result.stdout


def test_normalise_with_a_forced_format() -> None:
    """`--format` forces a family; an unknown one is a usage error."""
    unknown = runner.invoke(app, ["events", "normalise", "--json", "--format", "drift",
                                  str(FIXTURES / "drift_detected.json")])
    assert unknown.exit_code == 2
    forced = runner.invoke(app, ["events", "normalise", "--json", "--format", "responder",
                                 str(FIXTURES / "drift_detected.json")])
    assert forced.exit_code == 0
    assert orjson.loads(forced.stdout)["events"][0]["type"] == "model.drift"


def test_formats_lists_every_registered_format() -> None:
    """`events formats --json` lists the formats with their family."""
    result = runner.invoke(app, ["events", "formats", "--json"])
    names = {row["format"] for row in orjson.loads(result.stdout)["formats"]}
    assert {"guardduty.eventbridge", "securityhub", "ocsf", "cloudtrail.records", "falco", "responder.drift",
            "sentinel", "alertmanager"} <= names
