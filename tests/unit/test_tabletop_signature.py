"""Tabletop scorecards: each card carries its signature; `tabletop verify` holds it, and refuses a changed card."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
from typer.testing import CliRunner

from responder.cli import app
from responder.tabletop.grading import Card, Figures, Grade
from responder.tabletop.models import Playbook
from responder.tabletop.outcome import Run
from responder.tabletop.scorecard import check_signatures, sign_and_append
from responder.tabletop.suite import SuiteResult
from responder.timeline.checkpoint import Signer, generate_keypair


def _signed(tmp_path: Path) -> tuple[SuiteResult, str]:
    """A run's result with one card signed as `tabletop run` signs it, and the run's public key."""
    pb = Playbook.model_validate({"id": "pb", "title": "t", "objectives": ["o"],
                                  "injects": [{"id": "i", "event": "e.json"}],
                                  "expectations": [{"id": "key-off", "kind": "no_double_action"}]})
    grade = Grade(id="key-off", kind="no_double_action", status="PASS", weight=1.5, must_pass=True,
                  evidence=["1 step key(s) acted, each once"])
    card = Card(playbook="pb", title="t", path="pb.yaml", status="PASS", score=1.0, grades=[grade],
                figures=Figures(time_to_first_action=0.0, kills=[{"at": 10.0, "during": ["UpdateAccessKey"]}]),
                timeline=str(tmp_path / "t.jsonl"), incidents=[{"incident": "inc", "entries": [], "injects": []}])
    private, public = generate_keypair()
    signer = Signer.from_text(private)
    sign_and_append(card, Run(pb, tmp_path / "pb.yaml", tmp_path / "t.jsonl"), signer, 1_800_000_000.0)
    return SuiteResult(cards=[card], key_id=signer.key_id, public_key=public, wall_seconds=1.0), public


def test_card_signature_is_in_the_json_and_holds_until_the_card_changes(tmp_path):
    """`--json` and scorecard.json carry each card's signature, which holds as written and fails once changed."""
    result, _ = _signed(tmp_path)
    as_json = orjson.loads(orjson.dumps(result.model_dump(mode="json")))  # `tabletop run --json`
    as_file = json.loads(result.model_dump_json(indent=2))  # --report's scorecard.json
    for doc in (as_json, as_file):
        assert set(doc["cards"][0]["signature"]) == {"key_id", "sig", "covers"}
        assert check_signatures(doc, None) == (result.key_id, [("pb", True)])
        doc["cards"][0]["grades"][0]["status"] = "FAIL"
        assert check_signatures(doc, None) == (result.key_id, [("pb", False)])


def test_verify_command_exit_codes(tmp_path):
    """`tabletop verify` exits 0 on a signed card, 1 on a changed card or another key, 3 on a file that is no result."""
    result, _ = _signed(tmp_path)
    good, changed, other = tmp_path / "good.json", tmp_path / "changed.json", tmp_path / "other.json"
    good.write_text(result.model_dump_json(indent=2))
    doc = result.model_dump(mode="json")
    doc["cards"][0]["score"] = 0.5
    changed.write_text(json.dumps(doc))
    other.write_text("[]")

    def verify(*args: str) -> tuple[int, str]:
        got = CliRunner().invoke(app, ["tabletop", "verify", *args])
        return got.exit_code, got.output

    assert verify(str(good)) == (0, f"✓ pb: signed by {result.key_id}\n")
    code, out = verify(str(changed))
    assert (code, "✗ pb: signature does not hold" in out) == (1, True), out
    assert verify(str(good), "--public-key", generate_keypair()[1])[0] == 1
    assert verify(str(other))[0] == 3
