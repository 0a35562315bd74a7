"""Through the real broker and moto: matched alerts without the account their runbook groups by act, are never
dead-lettered, and those about one resource share one incident (one page), not one incident each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from responder.actuators.aws.session import AwsSession
from responder.ingest.kafka import ensure_topics, publish
from responder.models.timeline import EntryKind
from responder.service import Service
from responder.timeline.chain import parse_lines
from tests.findings import guardduty_finding
from tests.integration.example_kit import ROOT
from tests.integration.harness import make_settings, notifications, running, wait_for
from tests.kit import DEACTIVATE_STEPS
from tests.source_kit import datadog_signal

pytestmark = pytest.mark.integration
RUNBOOK = """\
id: by-account
trigger: {source: guardduty, type: "*IAMUser/*"}
group_by: "${event.account}:${event.resource.access_key.id}"
""" + DEACTIVATE_STEPS


def _bodies(timeline: Path, kind: str) -> list[dict[str, Any]]:
    """The bodies of `kind` entries, read as text (the running service holds the file's writer lock)."""
    return [e.body for e in parse_lines(timeline.read_bytes().splitlines()) if e.kind == kind] \
        if timeline.exists() else []


async def test_findings_without_the_group_by_account_are_contained_in_one_incident(
        kafka_bootstrap: str, aws: AwsSession, topics: dict[str, str], unique: str, tmp_path: Path) -> None:
    """Two findings about one key without `accountId` share one `no-account(guardduty):<key>` incident."""
    await aws.call("iam", "create_user", UserName="ml-training")
    key = str((await aws.call("iam", "create_access_key", UserName="ml-training"))["AccessKey"]["AccessKeyId"])
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    (runbooks / "by-account.yaml").write_text(RUNBOOK)
    findings = [guardduty_finding(key, finding_id=f"f-no-account-{n}-{unique}") for n in (1, 2)]
    for finding in findings:
        finding.pop("accountId")
    timeline = tmp_path / "t.jsonl"
    service = Service(make_settings(kafka_bootstrap, aws, topics, unique, timeline, runbooks))
    async with running(service):
        await publish(kafka_bootstrap, topics["alerts"], [orjson.dumps(f) for f in findings], key=key.encode())
        await wait_for(lambda: bool(_bodies(timeline, EntryKind.INCIDENT_JOINED)) or bool(service.deadlettered),
                       timeout=60)
    assert service.deadlettered == {}
    listed = await aws.call("iam", "list_access_keys", UserName="ml-training")
    assert [k["Status"] for k in listed["AccessKeyMetadata"]] == ["Inactive"]
    opened = _bodies(timeline, EntryKind.INCIDENT_OPENED)
    assert [(o["group_key"], "ungrouped" in o) for o in opened] == [(f"no-account(guardduty):{key}", False)]


@pytest.mark.timeout(180)
async def test_account_less_datadog_alerts_about_one_bucket_page_once(
        kafka_bootstrap: str, aws: AwsSession, topics: dict[str, str], unique: str, tmp_path: Path) -> None:
    """Two account-less Datadog signals about one bucket block its public access with one incident and one notice."""
    await ensure_topics(kafka_bootstrap, ["responder.notifications"], partitions=1)
    bucket = f"a{unique}-training-data"
    await aws.call("s3", "create_bucket", Bucket=bucket)
    signals = [orjson.dumps(datadog_signal(f"dd-{n}-{unique}", bucket)) for n in (1, 2)]
    timeline = tmp_path / "t.jsonl"
    service = Service(make_settings(kafka_bootstrap, aws, topics, unique, timeline, ROOT / "runbooks"))
    async with running(service):
        await publish(kafka_bootstrap, topics["alerts"], signals, key=bucket.encode())
        # the second signal's turn ends with its notice skipped as already sent in the incident
        await wait_for(lambda: any(b["step"] == "notify-owners" for b in _bodies(timeline, EntryKind.STEP_SKIPPED))
                       or bool(service.deadlettered), timeout=90)
    assert service.deadlettered == {}
    conf = await aws.call("s3", "get_public_access_block", Bucket=bucket)
    assert all(conf["PublicAccessBlockConfiguration"].values())
    opened = _bodies(timeline, EntryKind.INCIDENT_OPENED)
    assert [o["group_key"] for o in opened] == [f"no-account(datadog):{bucket}"]
    [incident] = list(service.engine.state.incidents.by_id)
    pages = await notifications(kafka_bootstrap, lambda doc: doc["incident"] == incident)
    assert [p["fields"]["bucket"] for p in pages] == [bucket]
