"""A record whose type or id field is missing or not text gets the type `unknown` or a stable id, never "None"."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from responder.normalise import decode_doc, guardduty, guardduty_heads
from responder.normalise.assemble import raw_id

ROOT = Path(__file__).resolve().parents[2]
NOT_TEXT = [None, True, {}, [], {"name": "x"}, ["ALARM"], "  "]


def _doc(path: str) -> Any:
    return orjson.loads((ROOT / path).read_bytes())


def _set(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


SHAPES = [
    ("runbooks/examples/falco-shell-in-inference-container.json", ("rule",)),
    ("tests/fixtures/events/falcosidekick_alertmanager.json", ("labels", "rule")),  # a list of alerts
    ("runbooks/examples/model-extraction-probing.json", ("alarmData", "state", "value")),
    ("tests/fixtures/events/cloudwatch_eventbridge_sagemaker.json", ("detail", "state", "value")),
    ("runbooks/examples/by-source/unauthorized-training-data-write.guardduty-s3-write.json", ("type",)),
]


def _decoded(path: str, where: tuple[str, ...], value: Any) -> list[Any]:
    doc = _doc(path)
    docs = doc if isinstance(doc, list) else [doc]  # a Falcosidekick → Alertmanager body is a list of alerts
    return [event for one in docs for event in decode_doc(_set(one, where, value))]


@pytest.mark.parametrize("value", NOT_TEXT, ids=repr)
@pytest.mark.parametrize(("path", "where"), SHAPES, ids=lambda s: s if isinstance(s, str) else "/".join(s))
def test_a_missing_or_non_text_type_is_unknown(path: str, where: tuple[str, ...], value: Any) -> None:
    """The type is `unknown`, never `None`, `True`, `{}` or a list rendered as text, and no threat is read."""
    events = _decoded(path, where, value)
    assert events
    for event in events:
        assert event.type == "unknown", (where, value)
        assert event.threat is None


@pytest.mark.parametrize("value", NOT_TEXT, ids=repr)
def test_the_guardduty_head_and_fast_lane_agree_on_an_unknown_type(value: Any) -> None:
    """The head decoder (type, severity, time, threat alone) says `unknown` exactly as the full decoder does."""
    finding = _doc("runbooks/examples/by-source/unauthorized-training-data-write.guardduty-s3-write.json")
    finding = finding.get("detail", finding)
    finding["type"] = value
    head = guardduty_heads.finding_head(finding)
    full = guardduty.finding_to_event(finding)
    assert (head.type, head.threat) == (full.type, full.threat) == ("unknown", None)


def test_a_cloudwatch_alarm_without_a_state_is_unknown_and_scored_low() -> None:
    """An alarm transition with no state keeps the low default score (2.0) it had as `UNKNOWN`."""
    [event] = decode_doc(_set(_doc("runbooks/examples/model-extraction-probing.json"), ("alarmData", "state"), {}))
    assert (event.type, event.severity.score) == ("unknown", 2.0)


@pytest.mark.parametrize("value", NOT_TEXT, ids=repr)
def test_a_gcp_scc_finding_without_a_text_category_is_unknown(value: Any) -> None:
    """A GCP SCC finding whose `category` is missing or not text has the type `unknown`, never "None"."""
    [event] = decode_doc(_set(_doc("tests/fixtures/events/gcp_scc_key.json"), ("finding", "category"), value))
    assert (event.source, event.type) == ("gcp-scc", "unknown")


@pytest.mark.parametrize("value", NOT_TEXT, ids=repr)
def test_a_gcp_scc_finding_without_a_text_resource_name_names_no_resource(value: Any) -> None:
    """A `resourceName` that is missing or not text yields no resource, never one whose id is "None"."""
    [event] = decode_doc(_set(_doc("tests/fixtures/events/gcp_scc_key.json"), ("finding", "resourceName"), value))
    assert [r.kind.value for r in event.resources if r.kind.value != "ip"] == []  # the caller's address may stay
    assert event.type == "Persistence: New API Key"


def _without(doc: dict[str, Any], node: tuple[str, ...], keys: tuple[str, ...], value: Any) -> dict[str, Any]:
    """`doc` with each of `keys` under `node` removed (value `missing`) or set to `value`."""
    out = copy.deepcopy(doc)
    target = out
    for key in node:
        target = target[key]
    for key in keys:
        if value == "missing":
            target.pop(key, None)
        else:
            target[key] = value
    return out


ID_SHAPES = [  # (source, record, the object holding the ids, every id field the decoder reads)
    ("gcp-scc", "tests/fixtures/events/gcp_scc_key.json", ("finding",), ("name", "canonicalName")),
    ("datadog", "tests/fixtures/events/datadog_access_key.json", (), ("id",)),
]


@pytest.mark.parametrize("value", ["missing", *NOT_TEXT], ids=repr)
@pytest.mark.parametrize(("source", "path", "node", "keys"), ID_SHAPES, ids=[s[0] for s in ID_SHAPES])
def test_a_record_without_a_text_id_gets_a_stable_id_never_none(source: str, path: str, node: tuple[str, ...],
                                                                  keys: tuple[str, ...], value: Any) -> None:
    """A record without a text id gets the record's hash as a stable id, never `None`, `True`, `{}` or `[]`."""
    doc = _without(_doc(path), node, keys, value)
    if source == "datadog":
        doc = _without(doc, ("detail",), ("id",), value)
        doc = _without(doc, ("detail", "meta", "signal"), ("id",), value)
    [first], [again] = decode_doc(doc), decode_doc(copy.deepcopy(doc))
    assert first.source == source
    assert first.id == again.id == raw_id(source, doc)


def test_a_gcp_scc_finding_named_only_canonically_keeps_that_name() -> None:
    """`canonicalName` is the id when `name` is missing, as before."""
    doc = _without(_doc("tests/fixtures/events/gcp_scc_key.json"), ("finding",), ("name",), "missing")
    doc["finding"]["canonicalName"] = "projects/7/sources/2/findings/f1"
    [event] = decode_doc(doc)
    assert event.id == "projects/7/sources/2/findings/f1"


@pytest.mark.parametrize("value", ["missing", *NOT_TEXT], ids=repr)
def test_a_sentinel_incident_without_a_name_is_its_own_incident(value: Any) -> None:
    """A Sentinel incident naming no resource and no text `name` is keyed by its hashed id, not `-:sentinel:None`."""
    docs = [_without(_doc("tests/fixtures/events/sentinel_logicapp.json"), ("object",), ("name",), value)
            for _ in range(2)]
    docs[1]["object"]["properties"]["title"] = "Another incident"
    first, second = (decode_doc(doc)[0] for doc in docs)
    assert first.resources == second.resources == ()
    assert "None" not in first.incident_key
    assert first.incident_key == f"-:sentinel:{first.id}"
    assert first.incident_key != second.incident_key
