"""The trigger index returns exactly what a linear scan would; explain names the first failing test."""

from __future__ import annotations

import fnmatch
import random
from datetime import UTC, datetime

import orjson
import pytest
from typer.testing import CliRunner

from responder.cli import app
from responder.models.event import Event, Resource, ResourceKind, Severity
from responder.models.runbook import Runbook
from responder.models.threat import Threat, ThreatCategory
from responder.rules.conditions import lookup
from responder.rules.explain import explain
from responder.rules.index import MEMO, MEMO_KEY, TriggerIndex, _glob, literal_prefix
from responder.rules.matcher import Matcher
from responder.rules.operators import MISSING

SOURCES = ["guardduty", "falco", "siem"]
TYPES = ["Recon:EC2/PortProbe", "UnauthorizedAccess:IAMUser/Exfil", "UnauthorizedAccess:IAMUser/Tor", "Drift:Model/X"]
CATEGORIES = [ThreatCategory.LLMJACKING, ThreatCategory.CREDENTIAL_COMPROMISE, ThreatCategory.MODEL_DRIFT]


def _rb(i: int, trigger: dict) -> Runbook:
    return Runbook.model_validate({"id": f"rb-{i}", "trigger": trigger,
                                   "steps": [{"id": "s", "actuator": "a", "with": {}}]})


def _event(source: str, type_: str, account: str = "111111111111", score: float = 8.0,
           category: ThreatCategory | None = None) -> Event:
    return Event(id="e", source=source, type=type_, severity=Severity.of(score), time=datetime(2026, 1, 1, tzinfo=UTC),
                 account=account, incident_key="k", threat=Threat(category=category) if category else None,
                 resources=(Resource(kind=ResourceKind.ACCESS_KEY, id="AKIA1", attributes={"user_name": "bob"}),))


def _random_trigger(rng: random.Random) -> dict:
    source = rng.choice([*SOURCES, "*", "guard*"])
    type_ = rng.choice([*TYPES, "*", "UnauthorizedAccess:*", "*IAMUser/*", "Recon:EC2/*", "Drift:?odel/X"])
    conds = rng.sample([
        {"field": "event.account", "op": "eq", "value": rng.choice(["111111111111", "222222222222"])},
        {"field": "event.account", "op": "in", "value": ["111111111111", "333333333333"]},
        {"field": "event.severity.score", "op": "ge", "value": rng.choice([3, 7, 9])},
        {"not": {"field": "event.resource.access_key.attributes.user_name", "op": "eq", "value": "root"}},
        {"any": [{"field": "event.region", "op": "exists", "value": False},
                 {"field": "event.type", "op": "regex", "value": "Tor$"}]},
    ], rng.randint(0, 3))
    category = rng.choice([[], [], rng.choice(CATEGORIES).value, [c.value for c in rng.sample(CATEGORIES, 2)]])
    return {"source": source, "type": type_, "conditions": conds, "category": category}


def test_index_agrees_with_a_linear_scan():
    """For random rule sets and events, indexed matching returns exactly the brute-force matches, in order."""
    rng = random.Random(7)
    books = [_rb(i, _random_trigger(rng)) for i in range(300)]
    matcher = Matcher(books)
    stats = matcher.index.stats()
    assert stats["exact"]
    assert stats["prefix"]
    assert stats["eq"]
    assert stats["category"]
    assert stats["residue"]
    for _ in range(300):
        event = _event(rng.choice(SOURCES), rng.choice(TYPES), rng.choice(["111111111111", "222222222222"]),
                       rng.uniform(0, 10), rng.choice([None, *CATEGORIES]))
        expected = [v.runbook for v in explain(books, event) if v.matched]
        got = [m.runbook.ref for m in matcher.match(event)]
        assert got == sorted(expected, key=lambda ref: int(ref.split("@")[0][3:]))


def test_remembered_candidates_agree_with_a_linear_scan_and_stay_bounded() -> None:
    """Without eq anchors candidates are remembered per (source, type, category): same matches, bounded memory."""
    rng = random.Random(11)
    triggers = [_random_trigger(rng) for _ in range(200)]
    for trig in triggers:
        trig["conditions"] = [c for c in trig["conditions"] if c.get("op") not in ("eq", "in")]
    books = [_rb(i, t) for i, t in enumerate(triggers)]
    matcher = Matcher(books)
    for _ in range(400):  # the same few combinations come back: answered from the memo
        event = _event(rng.choice(SOURCES), rng.choice(TYPES), score=rng.uniform(0, 10),
                       category=rng.choice([None, *CATEGORIES]))
        expected = [v.runbook for v in explain(books, event) if v.matched]
        assert [m.runbook.ref for m in matcher.match(event)] == sorted(
            expected, key=lambda ref: int(ref.split("@")[0][3:]))
    assert 0 < len(matcher.index._memo) <= len(SOURCES) * len(TYPES) * (1 + len(CATEGORIES))
    for i in range(MEMO + 10):  # a sender choosing new types cannot grow it without bound
        matcher.index.candidates({"event": _event("guardduty", f"New:{i}")})
    matcher.index.candidates({"event": _event("guardduty", "x" * (MEMO_KEY + 1))})
    assert len(matcher.index._memo) <= MEMO
    assert not any(len(k[1]) > MEMO_KEY for k in matcher.index._memo)


def test_index_narrows_candidates():
    """An event only meets the runbooks filed under its own source/type, not the whole set."""
    books = [_rb(i, {"source": "guardduty", "type": f"T{i}:X/Y"}) for i in range(1000)]
    index = TriggerIndex(books)
    assert [c.runbook.id for c in index.candidates({"event": _event("guardduty", "T7:X/Y")})] == ["rb-7"]


def test_category_is_an_exact_index_key():
    """A runbook triggering on a category is a candidate only for events of that category (a dict probe, no scan)."""
    cats = list(ThreatCategory)
    books = [_rb(i, {"category": cats[i % len(cats)].value}) for i in range(1000)]
    index = TriggerIndex(books)
    assert index.stats()["category"] == 1000
    assert index.stats()["residue"] == 0
    found = index.candidates({"event": _event("splunk", "any", category=ThreatCategory.LLMJACKING)})
    assert {c.runbook.trigger.category[0] for c in found} == {ThreatCategory.LLMJACKING}
    assert len(found) == len([b for b in books if b.trigger.category == [ThreatCategory.LLMJACKING]])
    assert index.candidates({"event": _event("splunk", "any")}) == []


def test_explain_names_a_category_mismatch():
    """A category trigger that the event's threat does not satisfy is reported as the `category` check."""
    [verdict] = explain([_rb(1, {"category": ["llmjacking", "backdoor_credential"]})],
                        _event("cloudtrail", "x", category=ThreatCategory.MODEL_DRIFT))
    assert (verdict.check, verdict.expected, verdict.actual) == ("category", ["llmjacking", "backdoor_credential"],
                                                                 "model_drift")


def test_literal_prefix():
    """The literal prefix stops at the first wildcard."""
    assert literal_prefix("UnauthorizedAccess:IAMUser/*") == "UnauthorizedAccess:IAMUser/"
    assert literal_prefix("*IAMUser*") == ""
    assert literal_prefix("exact") == "exact"


def test_trigger_globs_agree_with_fnmatchcase():
    """Globs compiled to plain string tests (`*lit*`, `lit*`, `*lit`) decide as fnmatchcase does."""
    values = ["", "a", "ab", "ba", "abc", "aa", "a\nb", "*", "a*b", "xIAMUser/y", "IAMUser/", "Recon:IAMUser/X"]
    patterns = ["*", "**", "*a", "a*", "*a*", "**a**", "a**", "*IAMUser/*", "Recon:*", "a*b", "?a", "[ab]*", "*a?",
                "a", "*a*b*", "*A*"]
    for pattern in patterns:
        accepts = _glob(pattern)
        assert [accepts(v) for v in values] == [fnmatch.fnmatchcase(v, pattern) for v in values], pattern


def test_conditions_read_fields_only():
    """Paths read model fields, never methods or the raw record."""
    event = _event("guardduty", "T")
    assert lookup({"event": event}, "event.view") is MISSING
    assert lookup({"event": event}, "event.raw") is MISSING
    assert lookup({"event": event}, "event.resource.access_key.attributes.user_name") == "bob"
    assert lookup({"event": event}, "event.time") == "2026-01-01T00:00:00Z"  # as the view writes it
    assert lookup({"event": event}, "event.__dict__") is MISSING
    assert lookup({"event": event}, "event.severity._view") is MISSING
    assert lookup({"event": {"_x": 1}}, "event._x") == 1  # a dict key, not a model's private state


def test_explain_names_the_first_failing_check():
    """A non-matching runbook reports the failing check, expected and actual values."""
    books = [
        _rb(1, {"source": "falco"}),
        _rb(2, {"source": "guardduty", "type": "Recon:*"}),
        _rb(3, {"conditions": [{"field": "event.severity.score", "op": "ge", "value": 5},
                               {"all": [{"field": "event.account", "op": "eq", "value": "999"}]}]}),
        _rb(4, {"source": "guardduty"}),
    ]
    verdicts = {v.runbook: v for v in explain(books, _event("guardduty", "UnauthorizedAccess:IAMUser/Tor"))}
    assert verdicts["rb-1@1"].check == "source"
    assert verdicts["rb-1@1"].actual == "guardduty"
    assert verdicts["rb-2@1"].check == "type"
    assert verdicts["rb-3@1"].check == "trigger.conditions[1]"
    assert (verdicts["rb-3@1"].expected, verdicts["rb-3@1"].actual) == ("999", "111111111111")
    assert verdicts["rb-4@1"].matched


def test_explain_command_on_a_finding_file(runbooks_dir, tmp_path):
    """`runbooks explain FILE --json` decodes the record and reports the shipped runbook as matching."""
    from tests.findings import envelope_bytes, guardduty_finding

    path = tmp_path / "finding.json"
    path.write_bytes(envelope_bytes(guardduty_finding("AKIAABCDEFGHIJKLMNOP")))
    result = CliRunner().invoke(app, ["runbooks", "explain", str(path), "--runbooks", str(runbooks_dir), "--json"])
    assert result.exit_code == 0, result.output
    doc = orjson.loads(result.stdout)
    assert doc["matched"] is True
    assert doc["events"][0]["verdicts"][0] == {"runbook": "iam-credential-compromise@1", "matched": True,
                                               "failed": None, "check": None, "expected": None, "actual": None}


def test_explain_exits_1_when_nothing_matches(runbooks_dir, tmp_path):
    """A low-severity finding matches nothing; explain says which condition failed and exits 1."""
    from tests.findings import envelope_bytes, guardduty_finding

    path = tmp_path / "finding.json"
    path.write_bytes(envelope_bytes(guardduty_finding("AKIAABCDEFGHIJKLMNOP", severity=2)))
    result = CliRunner().invoke(app, ["runbooks", "explain", str(path), "--runbooks", str(runbooks_dir)])
    assert result.exit_code == 1
    assert "event.severity.score ge 5" in result.stdout


def test_explain_takes_several_files(runbooks_dir, tmp_path):
    """explain FILE FILE reports every file's events in one document; an undecodable file makes it exit 3."""
    from tests.findings import envelope_bytes, guardduty_finding

    first, second, bad = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "bad.json"
    first.write_bytes(envelope_bytes(guardduty_finding("AKIAABCDEFGHIJKLMNOP")))
    second.write_bytes(envelope_bytes(guardduty_finding("AKIAABCDEFGHIJKLMNOQ")))
    bad.write_text('{"hello": "world"}')
    both = CliRunner().invoke(app, ["runbooks", "explain", str(first), str(second), "--runbooks", str(runbooks_dir),
                                    "--json"])
    assert both.exit_code == 0, both.output
    assert [e["path"] for e in orjson.loads(both.stdout)["events"]] == [str(first), str(second)]
    with_bad = CliRunner().invoke(app, ["runbooks", "explain", str(first), str(bad), "--runbooks", str(runbooks_dir)])
    assert with_bad.exit_code == 3
    assert "bad.json: not a decodable event" in with_bad.stderr


def test_an_in_anchor_listing_null_matches_what_a_linear_scan_matches() -> None:
    """`in: [null, …]` holds for a field that is null; the index must not drop the runbook for such an event."""
    books = [_rb(0, {"conditions": [{"field": "event.region", "op": "in", "value": [None, "us-east-1"]}]}),
             _rb(1, {"conditions": [{"field": "event.region", "op": "in", "value": [None]}]})]
    event = _event("guardduty", "Recon:EC2/PortProbe")
    assert event.region is None
    expected = [v.runbook for v in explain(books, event) if v.matched]
    assert expected == ["rb-0@1", "rb-1@1"]
    assert [m.runbook.ref for m in Matcher(books).match(event)] == expected


def test_an_eq_anchor_on_an_unhashable_field_value_does_not_break_matching(monkeypatch: pytest.MonkeyPatch) -> None:
    """An eq probe reading a Hashable value that does not hash (a tuple holding a dict) is skipped, not raised."""
    books = [_rb(0, {"conditions": [{"field": "event.resources", "op": "eq", "value": "AKIA1"}]}),
             _rb(1, {"source": "guardduty"})]
    event = _event("guardduty", "Recon:EC2/PortProbe")
    assert isinstance(lookup({"event": event}, "event.resources"), list)  # the reader never yields one (guard)
    matcher = Matcher(books)
    table = matcher.index._eq["event.resources"][1]
    monkeypatch.setitem(matcher.index._eq, "event.resources", (lambda scope: ({"id": "AKIA1"},), table))
    assert [m.runbook.ref for m in matcher.match(event)] == ["rb-1@1"]


def test_explain_reports_a_failed_test_on_a_value_that_is_not_json() -> None:
    """`runbooks explain` names the failed check even when the field read is a tuple of resources."""
    books = [_rb(0, {"conditions": [{"field": "event.resources", "op": "eq", "value": "AKIA1"}]})]
    [verdict] = explain(books, _event("guardduty", "Recon:EC2/PortProbe"))
    assert (verdict.matched, verdict.check) == (False, "trigger.conditions[0]")
    assert isinstance(verdict.actual, list)
    assert verdict.actual[0]["id"] == "AKIA1"
