"""Every decoder gives a record without a usable id its own stable `digest:` id: never "None", "" or a constant that
two distinct records share (the second would be taken as a repeat in their incident, its steps never run)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from responder.models import RawRecord
from responder.models.timeline import EntryKind
from responder.normalise import decode_doc
from responder.normalise.assemble import DERIVED, given_id
from tests.findings import guardduty_finding
from tests.kit import make_kit

ROOT = Path(__file__).resolve().parents[2]
MISSING = "missing"
NOT_IDS = [MISSING, None, True, False, {}, [], {"id": "x"}, ["x"], "", "  "]
Node = tuple[Any, ...]

# (name, record, [(the object holding id fields, the id fields the decoder reads)], a field to tell two records apart,
#  whether the schema refuses a non-string id before the decoder reads it)
SHAPES: list[tuple[str, str, list[tuple[Node, tuple[str, ...]]], Node, bool]] = [
    ("guardduty", "runbooks/examples/by-source/unauthorized-training-data-write.guardduty-s3-write.json",
     [((), ("id", "arn"))], ("title",), False),
    ("guardduty-fast-lane", "tests/fixtures/events/guardduty_envelope_mismatch_invalid_ip.json",
     [(("detail",), ("id", "arn")), ((), ("id",))], ("detail", "title"), False),
    ("guardduty-getfindings", "tests/fixtures/events/guardduty_getfindings_pascal.json",
     [(("Findings", 0), ("Id", "Arn"))], ("Findings", 0, "Title"), False),
    ("securityhub", "tests/fixtures/events/securityhub_imported_mismatch.json",
     [(("detail", "findings", 0), ("Id",))], ("detail", "findings", 0, "Title"), False),
    ("cloudtrail", "tests/fixtures/events/cloudtrail_eventbridge.json",
     [(("detail",), ("eventID",)), ((), ("id",))], ("detail", "requestID"), False),
    ("cloudwatch", "runbooks/examples/model-extraction-probing.json",
     [((), ("alarmArn",)), (("alarmData",), ("alarmName",))], ("alarmData", "state", "reason"), False),
    ("cloudwatch-time", "runbooks/examples/model-extraction-probing.json",
     [((), ("time",)), (("alarmData", "state"), ("timestamp",))], ("alarmData", "state", "reason"), False),
    ("drift", "tests/fixtures/events/drift_detected.json", [((), ("id",))], ("statistic",), True),
    ("falco", "runbooks/examples/falco-shell-in-inference-container.json", [((), ("uuid",))], ("output",), False),
    ("ocsf", "runbooks/examples/by-source/model-artifact-tampered.ocsf.json",
     [(("finding_info",), ("uid",)), (("metadata",), ("uid",))], ("message",), False),
    ("sentinel", "tests/fixtures/events/sentinel_alert_entities.json",
     [(("value", 0), ("name",)), (("value", 0, "properties"), ("systemAlertId",))],
     ("value", 0, "properties", "description"), False),
    ("google-secops", "tests/fixtures/events/secops_two_rules.json", [((), ("id",))], ("note",), False),
    ("splunk", "tests/fixtures/events/splunk_urgency.json", [((), ("sid",))], ("results_link",), False),
    ("wazuh", "tests/fixtures/events/wazuh_real.json", [((), ("id",))], ("full_log",), False),
    ("alertmanager", "tests/fixtures/events/alertmanager_resolved.json", [(("alerts", 0), ("fingerprint",))],
     ("alerts", 0, "generatorURL"), False),
    ("gcp-scc", "tests/fixtures/events/gcp_scc_key.json", [(("finding",), ("name", "canonicalName"))],
     ("finding", "description"), False),
    ("datadog", "tests/fixtures/events/datadog_access_key.json",
     [((), ("id",)), (("detail",), ("id",)), (("detail", "meta", "signal"), ("id",))], ("detail", "title"), False),
]


def _at(doc: Any, node: Node) -> Any:
    for part in node:
        doc = doc[part]
    return doc


def _record(path: str, ids: list[tuple[Node, tuple[str, ...]]], value: Any, vary: Node, n: int) -> Any:
    """The record with every id field set to `value` (or removed) and its `vary` field set to something `n`-th."""
    doc = orjson.loads((ROOT / path).read_bytes())
    for node, keys in ids:
        try:
            holder = _at(doc, node)
        except (KeyError, IndexError, TypeError):
            continue
        for key in keys:
            if value == MISSING:
                holder.pop(key, None)
            else:
                holder[key] = copy.deepcopy(value)
    *where, last = vary
    holder = _at(doc, tuple(where))
    holder[last] = (12.5 + n) if last == "statistic" else f"record {n}"
    return doc


def _values(strict: bool) -> list[Any]:
    """The id values a decoder reads itself (a schema-checked format refuses a non-string id as invalid)."""
    return [MISSING, None, "", "  "] if strict else NOT_IDS


CASES = [(shape, value) for shape in SHAPES for value in _values(shape[4])
         if not (shape[0] == "splunk" and value == MISSING)]  # a body without `sid` is no Splunk alert


@pytest.mark.parametrize(("shape", "value"), CASES, ids=[f"{s[0]}-{v!r}" for s, v in CASES])
def test_a_record_without_a_usable_id_gets_its_own_digest(shape: Any, value: Any) -> None:
    """The id is `digest:` + the record's hash: the same on redelivery, different for two distinct records."""
    _, path, ids, vary, _ = shape
    first = decode_doc(_record(path, ids, value, vary, 1))
    again = decode_doc(_record(path, ids, value, vary, 1))
    other = decode_doc(_record(path, ids, value, vary, 2))
    one, same, different = first[0], again[0], other[0]  # the record's first event (its first finding, if many)
    assert one.id.startswith(DERIVED), one.id
    assert "None" not in one.id
    assert one.id == same.id
    assert one.id != different.id


@pytest.mark.parametrize("shape", SHAPES, ids=[s[0] for s in SHAPES])
def test_a_forged_record_cannot_take_the_digest_of_a_real_one(shape: Any) -> None:
    """A record whose own id claims a real one's `digest:` id gets its own digest: the real record is no repeat."""
    _, path, ids, vary, _ = shape
    real = decode_doc(_record(path, ids, None, vary, 1))
    forged = _record(path, ids, None, vary, 2)
    node, keys = ids[0]
    _at(forged, node)[keys[0]] = real[0].id
    event = decode_doc(forged)[0]
    assert event.id.startswith(DERIVED)
    assert event.id != real[0].id


def test_given_ids_keep_their_text() -> None:
    """A real id is kept as it was (a string as is, a number rendered), so existing timelines keep their ids."""
    assert given_id(None, " x-1 ", "y") == " x-1 "
    assert given_id(True, 17) == "17"
    assert given_id(float("nan"), "digest:00", {}, "z") == "z"
    assert given_id(None, "", "  ") is None


RUNBOOK = """\
steps:
  - id: note
    actuator: test.echo
    with: {target: t1, message: "${event.id}"}
"""


async def test_two_distinct_findings_without_an_id_are_two_events_of_one_incident(tmp_path: Path) -> None:
    """Two GuardDuty findings with neither id nor ARN on one key are two events of one incident, not a repeat."""
    kit = make_kit(tmp_path, {"rb": RUNBOOK})
    assert kit.pipeline is not None
    for updated in ("2026-11-25T10:00:00.000Z", "2026-11-25T10:01:00.000Z"):
        finding = guardduty_finding("AKIAABCDEFGHIJKLMNOP", updated=updated)
        finding.pop("id", None)
        finding.pop("arn", None)
        await kit.pipeline.handle(RawRecord(topic="t", value=orjson.dumps(finding)))
    await kit.engine.recorder.flush()
    [joined] = kit.entries(EntryKind.INCIDENT_JOINED)
    assert joined["repeat"] is False
    assert joined["event_id"].startswith(DERIVED)
    assert [(e["step"], e["reason"]) for e in kit.entries(EntryKind.STEP_SKIPPED)] == [("note", "already_done")]


SPLUNK_RUNBOOK = """\
id: splunk-rb
trigger: {source: splunk, type: "*"}
group_by: "${event.incident_key}"
steps:
  - id: note
    actuator: test.echo
    with: {target: t1, message: "${event.id}"}
"""


async def test_two_results_of_one_splunk_search_are_two_events_of_one_incident(tmp_path: Path) -> None:
    """Two results of one search (one `sid`) are two events of one incident; a redelivery of one is the repeat."""
    from responder.engine.approvals import MemoryPublisher
    from responder.timeline import MemoryStore
    from tests.fakes import FakeIam, test_registry
    from tests.kit import Clock, Kit

    books = tmp_path / "runbooks"
    books.mkdir()
    (books / "splunk-rb.yaml").write_text(SPLUNK_RUNBOOK)
    reg, echo, wipe = test_registry()
    kit = Kit(MemoryStore(), FakeIam(), echo, wipe, MemoryPublisher(), Clock(), books, reg)
    kit.start()
    assert kit.pipeline is not None
    doc = orjson.loads((ROOT / "tests/fixtures/events/splunk_urgency.json").read_bytes())
    other = {**doc, "result": {**doc["result"], "src_ip": "198.51.100.7"}}
    for record in (doc, other, doc):
        await kit.pipeline.handle(RawRecord(topic="t", value=orjson.dumps(record)))
    await kit.engine.recorder.flush()
    assert len(kit.entries(EntryKind.INCIDENT_OPENED)) == 1
    joined = kit.entries(EntryKind.INCIDENT_JOINED)
    assert [j["repeat"] for j in joined] == [False, True]
    first, second = decode_doc(doc)[0].id, decode_doc(other)[0].id
    assert first != second
    assert first.startswith(doc["sid"] + "#")
    assert [j["event_id"] for j in joined] == [second, first]


def test_a_secops_id_composed_with_a_rule_id_cannot_take_a_real_digest() -> None:
    """A SecOps id composed with a ruleId to spell a real record's `digest:` id gets its own digest instead."""
    real = {"type": "RULE_DETECTION", "detectionTime": "2026-11-25T10:00:00Z",
            "detection": [{"ruleName": "Model registry tampering", "ruleId": "ru_a"}]}
    [genuine] = decode_doc(real)
    forged = {"type": "RULE_DETECTION", "id": "digest", "detectionTime": "2026-11-25T10:00:00Z",
              "detection": [{"ruleName": "x", "ruleId": genuine.id.removeprefix(DERIVED)}, {"ruleId": "ru_b"}]}
    ids = [event.id for event in decode_doc(forged)]
    assert genuine.id not in ids
    assert ids[1].startswith(DERIVED)  # the forged record's own digest, per rule
    assert ids[1].endswith(":ru_b")
