"""The intake's delivery keys never make two distinct alerts one delivery (the second dropped as a sender's retry): a
blank or non-text Splunk `sid`, two results of one Splunk search (one `sid`), an Alertmanager alert without a
fingerprint."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from responder.intake import Intake, create_app
from responder.intake.records import _hash, records_for
from responder.normalise import decode_doc, normalise
from responder.normalise.webhooks import MAX_SID
from tests.intake_kit import BEARER, FakeSender, corpus, intake_settings

HEADERS = {"content-type": "application/json", "authorization": f"Bearer {BEARER}"}
LIMIT = 1024 * 1024  # intake_max_body_bytes


@pytest.fixture(name="sender")
def _sender() -> FakeSender:
    return FakeSender()


@pytest.fixture(name="client")
def _client(sender: FakeSender) -> Iterator[TestClient]:
    with TestClient(create_app(Intake(intake_settings(), sender))) as client:
        yield client


def _post(client: TestClient, doc: Any) -> dict[str, int]:
    answer = client.post("/v1/events/dd", content=orjson.dumps(doc), headers=HEADERS)
    assert answer.status_code == 202, answer.text
    return {"produced": answer.json()["produced"], "duplicates": answer.json()["duplicates"]}


@pytest.mark.parametrize("sid", ["", "  ", True, "digest:00"])
def test_two_splunk_alerts_without_a_usable_sid_are_both_produced(sid: Any, client: TestClient) -> None:
    """Two Splunk alerts whose `sid` is blank, boolean or digest-like are two deliveries; the same body duplicates."""
    docs = []
    for n in (1, 2):
        doc = orjson.loads(corpus("splunk"))
        doc.update(sid=sid, results_link=f"http://example.com/{n}")
        docs.append(doc)
    assert _post(client, docs[0]) == {"produced": 1, "duplicates": 0}
    assert _post(client, docs[1]) == {"produced": 1, "duplicates": 0}
    assert _post(client, docs[1]) == {"produced": 0, "duplicates": 1}


def test_two_results_of_one_splunk_search_are_both_produced(client: TestClient, sender: FakeSender) -> None:
    """Each result of one search (one `sid`) is produced with its own event id; only a redelivery of one duplicates."""
    first = orjson.loads(corpus("splunk"))
    second = {**first, "result": {**first["result"], "host": "other-host", "_raw": "another result row"}}
    same_host = {**first, "result": {**first["result"], "_raw": "a third row, same host and incident key"}}
    assert _post(client, first) == {"produced": 1, "duplicates": 0}
    assert _post(client, second) == {"produced": 1, "duplicates": 0}
    assert _post(client, same_host) == {"produced": 1, "duplicates": 0}
    assert _post(client, first) == {"produced": 0, "duplicates": 1}
    reordered = {**first, "result": dict(reversed(list(first["result"].items())))}
    assert orjson.dumps(reordered) != orjson.dumps(first)
    assert _post(client, reordered) == {"produced": 0, "duplicates": 1}
    ids = [decode_doc(orjson.loads(value))[0].id for _, value, _, _ in sender.sent]
    assert len(set(ids)) == 3
    assert all(i.startswith(first["sid"] + "#") for i in ids)


def test_two_alertmanager_alerts_without_a_fingerprint_are_both_produced(client: TestClient) -> None:
    """Two distinct Alertmanager alerts of one group without a fingerprint are two deliveries; a repeat duplicates."""
    doc = orjson.loads(corpus("alertmanager"))
    for alert in doc["alerts"]:
        alert.pop("fingerprint", None)
        alert["startsAt"] = doc["alerts"][0]["startsAt"]
    assert _post(client, doc) == {"produced": 2, "duplicates": 0}
    assert _post(client, doc) == {"produced": 0, "duplicates": 2}


def test_splunk_and_alertmanager_alerts_with_ids_keep_their_delivery_keys() -> None:
    """A fingerprint keeps its delivery key; a real `sid` is keyed with its result's canonical JSON (2026-12-07)."""
    splunk, manager = orjson.loads(corpus("splunk")), orjson.loads(corpus("alertmanager"))
    [record] = records_for("dd", corpus("splunk"), splunk, decode_doc(splunk), None, body_limit=LIMIT)
    result = orjson.dumps(splunk["result"], option=orjson.OPT_SORT_KEYS).decode()
    assert record.delivery == "splunk:" + _hash("dd", str(splunk["sid"]), result)
    keys = [r.delivery for r in records_for("dd", corpus("alertmanager"), manager, decode_doc(manager), None,
                                                body_limit=LIMIT)]
    assert keys == ["am:" + _hash("dd", manager["groupKey"], "firing", alert["fingerprint"], alert["startsAt"])
                    for alert in manager["alerts"]]


def _deep(leaf: str, *, host_last: bool = False, depth: int = 1000) -> bytes:
    """A Splunk alert whose result holds `leaf` under `depth` nested objects (orjson reads 1,024, writes 255)."""
    deep = b'"deep": ' + b'{"a": ' * depth + orjson.dumps(leaf) + b"}" * depth
    result = deep + b', "host": "h"' if host_last else b'"host": "h", ' + deep
    return b'{"sid": "s-deep", "search_name": "x", "result": {' + result + b"}}"


def test_a_splunk_result_nested_past_orjsons_writing_limit_still_gets_its_own_id() -> None:
    """A result nested 1,000 levels decodes: its id is `<sid>#<hash>`, its own, and key order does not change it."""
    [first], [second] = normalise(_deep("one")), normalise(_deep("two"))
    assert first.id.startswith("s-deep#")
    assert second.id.startswith("s-deep#")
    assert first.id != second.id
    reordered = _deep("one", host_last=True)
    assert reordered != _deep("one")  # the same result, its keys in another order
    assert [e.id for e in normalise(reordered)] == [first.id]
    keys = {records_for("dd", body, orjson.loads(body), normalise(body), None, body_limit=LIMIT)[0].delivery
            for body in (_deep("one"), _deep("two"), reordered)}
    assert len(keys) == 2


@pytest.mark.parametrize("length", [MAX_SID, MAX_SID + 1, 10_000])
def test_a_splunk_sid_of_any_length_gives_an_event_id_of_at_most_2048_characters(length: int) -> None:
    """A `sid` making the id over 2,048 characters is replaced by `digest:` and its hash; a shorter one is kept."""
    doc = {**orjson.loads(corpus("splunk")), "sid": "s" * (length - 1) + "x"}
    [event] = decode_doc(doc)
    assert len(event.id) <= 2048
    assert event.id.startswith(doc["sid"] + "#") == (length <= MAX_SID)
    [other] = decode_doc({**doc, "sid": "s" * (length - 1) + "y"})
    assert other.id != event.id
    assert other.id.split("#")[1] == event.id.split("#")[1]  # the same result
