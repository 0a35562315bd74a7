"""Through the real broker and moto: a matched finding without the account its runbook groups by still acts and is
never dead-lettered."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from responder.actuators.aws.session import AwsSession
from responder.ingest.kafka import publish
from responder.models.timeline import EntryKind
from responder.service import Service
from responder.timeline import FileStore, Recorder
from tests.findings import guardduty_finding
from tests.integration.harness import make_settings, running, wait_for
from tests.kit import DEACTIVATE_STEPS
from tests.unit.test_group_by_missing_field import HEADER

pytestmark = pytest.mark.integration
RUNBOOK = HEADER + DEACTIVATE_STEPS  # grouped by `${event.account}:${event.resource.access_key.id}`


async def test_a_finding_without_the_group_by_account_is_contained_not_deadlettered(
        kafka_bootstrap: str, aws: AwsSession, topics: dict[str, str], unique: str, tmp_path: Path) -> None:
    """No `accountId`: the service opens the incident `ungrouped:<finding id>` and deactivates the key; nothing is
    dead-lettered (before: dead-lettered as `internal`, the key left active)."""
    await aws.call("iam", "create_user", UserName="ml-training")
    key = str((await aws.call("iam", "create_access_key", UserName="ml-training"))["AccessKey"]["AccessKeyId"])
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    (runbooks / "by-account.yaml").write_text(RUNBOOK)
    finding = guardduty_finding(key, finding_id="f-no-account")
    finding.pop("accountId")
    timeline = tmp_path / "t.jsonl"
    service = Service(make_settings(kafka_bootstrap, aws, topics, unique, timeline, runbooks))
    async with running(service):
        await publish(kafka_bootstrap, topics["alerts"], [orjson.dumps(finding)])
        await wait_for(lambda: bool(service.engine.state.results()) or bool(service.deadlettered), timeout=60)
    assert service.deadlettered == {}
    listed = await aws.call("iam", "list_access_keys", UserName="ml-training")
    assert [k["Status"] for k in listed["AccessKeyMetadata"]] == ["Inactive"]
    opened = [e.body for e in Recorder(FileStore(timeline)).entries() if e.kind == EntryKind.INCIDENT_OPENED]
    assert [(o["group_key"], "${event.account}" in o["ungrouped"]) for o in opened] == [
        ("ungrouped:f-no-account", True)]
