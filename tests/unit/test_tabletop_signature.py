"""Tabletop scorecards: each card carries its signature; `tabletop verify` holds it, and refuses a changed card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
from typer.testing import CliRunner

from responder.cli import app
from responder.tabletop.grading import Card, Figures, Grade
from responder.tabletop.models import Playbook
from responder.tabletop.outcome import Run
from responder.tabletop.scorecard import sign_and_append
from responder.tabletop.signed import check_document, sign_manifest
from responder.tabletop.suite import SuiteResult
from responder.timeline.checkpoint import Signer, generate_keypair


def _card(tmp_path: Path, name: str, status: str, signer: Signer) -> Card:
    pb = Playbook.model_validate({"id": name, "title": "t", "objectives": ["o"],
                                  "injects": [{"id": "i", "event": "e.json"}],
                                  "expectations": [{"id": "key-off", "kind": "no_double_action"}]})
    grade = Grade(id="key-off", kind="no_double_action", status=status, weight=1.5, must_pass=True,
                  evidence=["1 step key(s) acted, each once"])
    card = Card(playbook=name, title="t", path=f"{name}.yaml", status=status, score=1.0, grades=[grade],
                figures=Figures(time_to_first_action=0.0, kills=[{"at": 10.0, "during": ["UpdateAccessKey"]}]),
                timeline=str(tmp_path / f"{name}.jsonl"), incidents=[{"incident": "inc", "entries": [], "injects": []}])
    sign_and_append(card, Run(pb, tmp_path / f"{name}.yaml", tmp_path / f"{name}.jsonl"), signer, 1_800_000_000.0)
    return card


def _signed(tmp_path: Path, statuses: tuple[str, ...] = ("PASS",)) -> tuple[SuiteResult, str]:
    """A run's result with cards `pb`, `pb2`, ... signed as `tabletop run` signs them, and the run's public key."""
    private, public = generate_keypair()
    signer = Signer.from_text(private)
    cards = [_card(tmp_path, "pb" + (str(n + 1) if n else ""), s, signer) for n, s in enumerate(statuses)]
    return SuiteResult(cards=cards, key_id=signer.key_id, public_key=public, wall_seconds=1.0,
                       manifest=sign_manifest(cards, signer, "run1", 1_800_000_000.0)), public


def _check(doc: dict[str, Any]) -> tuple[list[tuple[str, bool]], list[str]]:
    checked = check_document(doc, None)
    return checked.cards, checked.manifest


def test_card_signature_is_in_the_json_and_holds_until_the_card_changes(tmp_path):
    """`--json` and scorecard.json carry each card's signature, which holds as written and fails once changed."""
    result, _ = _signed(tmp_path)
    as_json = orjson.loads(orjson.dumps(result.model_dump(mode="json")))  # `tabletop run --json`
    as_file = json.loads(result.model_dump_json(indent=2))  # --report's scorecard.json
    for doc in (as_json, as_file):
        assert set(doc["cards"][0]["signature"]) == {"key_id", "sig", "covers"}
        assert _check(doc) == ([("pb", True)], [])
        doc["cards"][0]["grades"][0]["status"] = "FAIL"
        assert _check(doc) == ([("pb", False)], [])


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

    code, out = verify(str(good))
    assert (code, out.splitlines()[:2]) == (0, [f"✓ pb: signed by {result.key_id}",
                                                "✓ manifest: every card the run signed, once each, in order"]), out
    code, out = verify(str(changed))
    assert (code, "✗ pb: signature does not hold" in out) == (1, True), out
    assert verify(str(good), "--public-key", generate_keypair()[1])[0] == 1
    assert verify(str(other))[0] == 3


def test_a_dropped_duplicated_or_reordered_card_or_a_changed_overall_status_fails(tmp_path):
    """Every card left is signed, yet the manifest refuses a card dropped, duplicated, reordered, or a new status."""
    result, _ = _signed(tmp_path, ("PASS", "FAIL"))
    doc = result.model_dump(mode="json")
    assert _check(doc) == ([("pb", True), ("pb2", True)], [])
    cuts = {"dropped": [doc["cards"][0]], "duplicated": [*doc["cards"], doc["cards"][0]],
            "reordered": doc["cards"][::-1]}
    for how, cards in cuts.items():
        cards_ok, manifest = _check({**doc, "cards": cards})
        assert (all(ok for _, ok in cards_ok), bool(manifest)) == (True, True), how
    assert "the cards are not the ones the run signed" in _check({**doc, "cards": cuts["reordered"]})[1][0]
    for change in ({"status": "PASS", "exit": 0}, {"count": 1}):
        assert "the manifest's signature does not hold" in _check({**doc, "manifest": {**doc["manifest"],
                                                                                       **change}})[1][0]
    assert _check({**doc, "manifest": None})[1] == [
        "no signed manifest: nothing shows the cards are all there, once each and in order"]


def test_a_document_rewritten_by_json_tools_still_verifies(tmp_path):
    """Re-serialised by Python's json, and with every integral float written as an int (as jq 1.6 does), it holds."""
    result, _ = _signed(tmp_path, ("PASS", "FAIL"))

    def ints(value: Any) -> Any:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, dict):
            return {k: ints(v) for k, v in value.items()}
        return [ints(v) for v in value] if isinstance(value, list) else value

    round_tripped = json.loads(json.dumps(json.loads(result.model_dump_json(indent=2)), indent=4))
    assert isinstance(round_tripped["cards"][0]["score"], float)  # json keeps 1.0; the ints() copy has 1
    for doc in (round_tripped, ints(round_tripped)):
        assert _check(doc) == ([("pb", True), ("pb2", True)], [])
    changed = ints(round_tripped)
    changed["cards"][0]["score"] = 0.5
    assert _check(changed)[0] == [("pb", False), ("pb2", True)]


def test_verify_refuses_a_document_without_cards_as_no_result(tmp_path):
    """No `cards`, or an empty list: exit 3 with one line (not a silent exit 1), and `ok` never true on a failure."""
    result, public = _signed(tmp_path)
    empty, cut = tmp_path / "empty.json", tmp_path / "cut.json"
    empty.write_text(json.dumps({**result.model_dump(mode="json"), "cards": []}))
    cut.write_text(json.dumps({**result.model_dump(mode="json"), "manifest": None}))
    for args in ([str(empty)], [str(empty), "--json"]):
        got = CliRunner().invoke(app, ["tabletop", "verify", *args])
        assert (got.exit_code, len(got.output.strip().splitlines()), "non-empty `cards`" in got.output) == \
            (3, 1, True), got.output
    got = CliRunner().invoke(app, ["tabletop", "verify", str(cut), "--json", "--public-key", public])
    assert (got.exit_code, json.loads(got.output)["ok"], json.loads(got.output)["key"]) == (1, False, "given")


def test_verify_says_the_embedded_key_proves_integrity_not_origin(tmp_path):
    """Without --public-key, verify says its key is the document's own; with the run's key it does not."""
    result, public = _signed(tmp_path)
    good = tmp_path / "good.json"
    good.write_text(result.model_dump_json())
    own = CliRunner().invoke(app, ["tabletop", "verify", str(good)])
    given = CliRunner().invoke(app, ["tabletop", "verify", str(good), "--public-key", public])
    assert (own.exit_code, "is the document's own `public_key`" in own.output, "not who signed" in own.output) == \
        (0, True, True)
    assert (given.exit_code, "the document's own" in given.output) == (0, False)
