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


def test_normalise_prints_the_good_parts_of_a_partly_bad_file(tmp_path: Path) -> None:
    """`events normalise` on a partly bad file prints the good events, lists each bad part, and exits 3."""
    records = orjson.loads((FIXTURES / "cloudtrail_records_invalid_ip.json").read_bytes())
    records["Records"].insert(1, "not a record")
    partly = tmp_path / "partly.json"
    partly.write_bytes(orjson.dumps(records))
    lines = tmp_path / "lines.jsonl"
    lines.write_bytes((FIXTURES / "drift_detected.json").read_bytes().replace(b"\n", b" ") + b'\n{"hello": "world"}\n')
    result = runner.invoke(app, ["events", "normalise", "--json", str(partly), str(lines)])
    assert result.exit_code == 3
    doc = orjson.loads(result.stdout)
    assert doc["ok"] is False
    assert [(d["path"], d["type"]) for d in doc["events"]] == [
        (str(partly), "secretsmanager.amazonaws.com/GetSecretValue"),
        (str(partly), "kms.amazonaws.com/ScheduleKeyDeletion"),
        (str(lines), "model.drift"),
    ]
    assert [(e["path"], e["reason"]) for e in doc["errors"]] == [(str(partly), "validation"),
                                                                 (str(lines), "unknown_shape")]
    assert doc["errors"][0]["detail"].startswith("cloudtrail record [1] of 3: ")
    assert doc["errors"][1]["detail"].startswith("document [1] of 2: ")
    human = runner.invoke(app, ["events", "normalise", str(partly)])
    assert human.exit_code == 3
    assert "kms.amazonaws.com/ScheduleKeyDeletion" in human.stdout
    assert "cloudtrail record [1] of 3" in human.output


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
