"""Events that name no AWS account (SIEM alerts) group by `no-account(<source>)` under a `${event.account}:…` key:
one incident per resource, never merged with an account's incident or another source's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from responder.actuators import registry
from responder.catalog import load_runbooks
from responder.engine.grouping import group_key
from responder.models import RawRecord
from responder.models.event import Event, Resource, ResourceKind
from responder.models.timeline import EntryKind
from responder.normalise import normalise
from tests.kit import Kit, make_kit
from tests.source_kit import ROOT, datadog_signal

BY_BUCKET = "${event.account}:${event.resource.bucket.id}"
RUNBOOK = """\
id: dd-bucket
trigger: {source: datadog}
group_by: "${event.account}:${event.resource.bucket.id}"
steps:
  - id: note
    actuator: test.echo
    with: {target: t1, message: "${event.resource.bucket.id}"}
  - id: notify
    actuator: test.echo
    with: {target: page, message: "${event.type}"}
"""


def _event(doc: dict[str, Any]) -> Event:
    [event] = normalise(orjson.dumps(doc))
    return event


def test_two_account_less_alerts_about_one_bucket_share_a_key() -> None:
    """Two account-less Datadog signals about one bucket render the same key `no-account(datadog):<bucket>`."""
    one, two = _event(datadog_signal("s-1")), _event(datadog_signal("s-2"))
    assert one.account is None
    assert group_key(BY_BUCKET, one) == group_key(BY_BUCKET, two) == ("no-account(datadog):acme-training-data", None)


def test_account_less_alerts_about_two_buckets_stay_apart() -> None:
    """The rest of the key still separates: another bucket is another incident."""
    one, other = _event(datadog_signal("s-1")), _event(datadog_signal("s-2", "b-data"))
    assert group_key(BY_BUCKET, one)[0] != group_key(BY_BUCKET, other)[0]


def test_an_account_is_grouped_as_before_and_never_with_the_fallback() -> None:
    """An event naming an account keeps `<account>:<bucket>`; two accounts are two keys, neither the fallback's."""
    a = group_key(BY_BUCKET, _event(datadog_signal("s-1", account="111122223333")))
    b = group_key(BY_BUCKET, _event(datadog_signal("s-2", account="444455556666")))
    assert a == ("111122223333:acme-training-data", None)
    assert b == ("444455556666:acme-training-data", None)


@pytest.mark.parametrize("account", ["no-account(datadog)", "no-account(datadog):x"])
def test_an_account_claiming_the_fallback_is_its_own_incident(account: str) -> None:
    """An event whose own account is written as the fallback cannot join the account-less alerts' incident."""
    event = _event(datadog_signal("s-9", account=account))
    key, why = group_key(BY_BUCKET, event)
    assert key == "ungrouped:s-9"
    assert why is not None
    assert "no-account(" in why


def test_a_resource_carrying_the_fallback_text_cannot_bridge_two_sources() -> None:
    """A bucket name holding `no-account(` opens its own incident and cannot bridge two sources' or accounts' keys."""
    event = _event(datadog_signal("s-7", bucket="x-data:no-account(sentinel)"))
    assert group_key("${event.resource.bucket.id}:${event.account}", event)[0] == "ungrouped:s-7"
    assert group_key(BY_BUCKET, event)[0] == "ungrouped:s-7"


def test_another_missing_field_still_opens_its_own_incident() -> None:
    """Only the account falls back: a missing resource still groups the event on its own."""
    key, why = group_key("${event.account}:${event.resource.instance.id}", _event(datadog_signal("s-3")))
    assert key == "ungrouped:s-3"
    assert why is not None
    assert "event.resource.instance.id" in why


# shipped `${event.account}:…` keys whose other part AWS assigns (a key, instance id) or names once across accounts
# (a bucket): the fallback cannot merge two accounts' alerts; the others name what each account names as it likes
PINNED = {"compromised-inference-host", "iam-backdoor-key", "iam-credential-compromise", "training-data-bucket-public"}


def test_every_shipped_account_key_groups_its_example_without_an_account() -> None:
    """Shipped account-keyed runbooks render the fallback key without an account; name-keyed ones stay `ungrouped:`."""
    keyed = [rb for rb in load_runbooks(ROOT / "runbooks", registry) if "${event.account}" in rb.group_by]
    assert len(keyed) >= 5
    assert {rb.id for rb in keyed} > PINNED
    for rb in keyed:
        [event, *_] = normalise((ROOT / "runbooks" / "examples" / f"{rb.id}.json").read_bytes())
        key, why = group_key(rb.group_by, event.model_copy(update={"account": None}))
        if rb.id in PINNED:
            assert why is None, (rb.id, why)
            assert key.startswith(f"no-account({event.source}):"), (rb.id, key)
        else:
            assert key == f"ungrouped:{event.id}", (rb.id, key)
            assert why is not None, rb.id
            assert "${event.account}" in why, (rb.id, why)


@pytest.mark.parametrize("group_by", ["${event.account}:${event.resource.iam_role.name}",
                                      "${event.account}:${event.resource.endpoint.id}",
                                      "${event.account}:${event.resource.secret.id}:${event.resource.iam_role.name}"])
def test_account_less_alerts_about_a_name_any_account_may_choose_never_share_an_incident(group_by: str) -> None:
    """Account-less alerts about one role, endpoint or secret name each open their own `ungrouped:` incident."""
    def signal(signal_id: str) -> Event:
        doc = datadog_signal(signal_id)
        doc["detail"]["meta"]["signal"]["rule"]["group_by_fields"] = {
            "@userIdentity.arn": "arn:aws:sts::111122223333:assumed-role/ml-training/i-0abc"}
        return _event(doc).model_copy(update={"account": None, "resources": (
            Resource(kind=ResourceKind.IAM_ROLE, id="ml-training", name="ml-training"),
            Resource(kind=ResourceKind.ENDPOINT, id="fraud-model"), Resource(kind=ResourceKind.SECRET, id="db"),
            Resource(kind=ResourceKind.BUCKET, id="acme-training-data", name="acme-training-data"))})

    one, two = group_key(group_by, signal("s-1")), group_key(group_by, signal("s-2"))
    assert (one[0], two[0]) == ("ungrouped:s-1", "ungrouped:s-2")
    assert one[1] is not None
    assert "${event.account}" in one[1]


async def _send(kit: Kit, doc: dict[str, Any]) -> None:
    assert kit.pipeline is not None
    await kit.pipeline.handle(RawRecord(topic="t", value=orjson.dumps(doc)))
    await kit.engine.recorder.flush()


async def test_account_less_alerts_of_one_bucket_open_one_incident_and_page_once(tmp_path: Path) -> None:
    """Account-less signals about one bucket open one incident and page once; one naming an account opens its own."""
    kit = make_kit(tmp_path, {})
    (kit.runbooks_dir / "dd-bucket.yaml").write_text(RUNBOOK)
    kit.start()
    for n in (1, 2, 3):
        await _send(kit, datadog_signal(f"s-{n}"))
    await _send(kit, datadog_signal("s-4", account="111122223333"))
    opened = kit.entries(EntryKind.INCIDENT_OPENED)
    assert [o["group_key"] for o in opened] == ["no-account(datadog):acme-training-data",
                                                "111122223333:acme-training-data"]
    assert all("ungrouped" not in o for o in opened)
    joined = kit.entries(EntryKind.INCIDENT_JOINED)
    assert [(j["event_id"], j.get("repeat", False)) for j in joined] == [("s-2", False), ("s-3", False)]
    assert [p.target for p in kit.echo.applied].count("page") == 2  # once per incident
