"""`responder coverage`: docs/coverage.md is its output, and every covered cell is proven by decode → match."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from responder.actuators import registry
from responder.catalog import load_runbooks
from responder.cli import app
from responder.cli.coverage import compute
from responder.normalise import normalise
from responder.rules.matcher import Matcher

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "runbooks" / "examples"
# issue 10 §5: each of these threats, from this source, must reach a runbook
ISSUE_CELLS = {
    ("credential_compromise", "securityhub"),  # ASFF: malicious caller using an IAM access key
    ("model_tampering", "ocsf"),  # OCSF Detection Finding of a tampered serving model
    ("model_drift", "sagemaker-model-monitor"),  # native Model Monitor violation report
    ("public_data_exposure", "datadog"),  # Datadog signal about a public S3 bucket
    ("credential_compromise", "splunk"),  # Splunk alert naming a leaked key
    ("backdoor_credential", "cloudtrail"),  # CreateAccessKey for another user
    ("defense_evasion_logging", "cloudtrail"),  # StopLogging
    ("llmjacking", "cloudtrail"),  # Bedrock model access enabled / invoked with a user's key
}


def test_committed_matrix_is_the_command_output(runbooks_dir):
    """docs/coverage.md equals `responder coverage` (regenerate: responder coverage > docs/coverage.md)."""
    result = CliRunner().invoke(app, ["coverage", "--runbooks", str(runbooks_dir), "--examples", str(EXAMPLES)])
    assert result.exit_code == 0, result.output
    assert result.stdout == (ROOT / "docs" / "coverage.md").read_text(encoding="utf-8")


def test_every_covered_cell_is_proven_by_decode_and_match(runbooks_dir):
    """Each proof's example, decoded again, has an event of that source and category that its runbooks match."""
    cov = compute(runbooks_dir, EXAMPLES)
    matcher = Matcher(load_runbooks(runbooks_dir, registry))
    assert cov.proofs
    for proof in cov.proofs:
        events = [e for e in normalise((EXAMPLES / proof.example).read_bytes())
                  if e.id == proof.event_id and e.source == proof.source
                  and e.threat is not None and e.threat.category == proof.category]
        assert events, proof
        assert set(proof.runbooks) <= {m.runbook.id for m in matcher.match(events[0])}, proof


def test_the_issue_threats_are_covered(runbooks_dir):
    """The eight threat × source pairs of issue 10 §5 are covered cells."""
    assert compute(runbooks_dir, EXAMPLES).covered() >= ISSUE_CELLS


def test_a_cell_without_its_runbook_is_not_covered(runbooks_dir, tmp_path):
    """Removing the llmjacking runbooks leaves the cell mapped but no longer covered (the matrix can go red)."""
    books = tmp_path / "runbooks"
    shutil.copytree(runbooks_dir, books)
    for path in books.glob("llmjacking*.yaml"):  # llmjacking and llmjacking-unnamed-principal
        path.unlink()
    cov = compute(books, EXAMPLES)
    assert ("llmjacking", "cloudtrail") not in cov.covered()
    assert "llmjacking" in cov.mapped["cloudtrail"]


def test_json_output_lists_the_proofs(runbooks_dir):
    """`coverage --json` is one document with sources, mapped categories and proofs."""
    result = CliRunner().invoke(app, ["coverage", "--json", "--runbooks", str(runbooks_dir),
                                      "--examples", str(EXAMPLES)])
    doc = orjson.loads(result.stdout)
    assert {"sources", "mapped", "proofs"} <= set(doc)
    assert {(p["category"], p["source"]) for p in doc["proofs"]} >= ISSUE_CELLS


@pytest.mark.parametrize("missing", ["examples", "runbooks"])
def test_missing_directory_exits_3(runbooks_dir, tmp_path, missing):
    """A missing runbook or example directory is a one-line configuration error, exit 3."""
    args = {"runbooks": str(runbooks_dir), "examples": str(EXAMPLES), missing: str(tmp_path / "nope")}
    result = CliRunner().invoke(app, ["coverage", "--runbooks", args["runbooks"], "--examples", args["examples"]])
    assert result.exit_code == 3
