"""Through the broker: an AWS service principal's training-data write pages nobody; the root's write still pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from responder.ingest.kafka import ensure_topics, publish
from responder.service import Service
from responder.timeline.chain import parse_lines
from tests.integration.example_kit import EXAMPLES, ROOT
from tests.integration.harness import make_settings, notifications, running, wait_for

pytestmark = pytest.mark.integration
RUNBOOK = "training-data-write-unnamed-principal"


def _entries(path: Path) -> list[tuple[str, dict[str, Any]]]:
    return [(e.kind, e.body) for e in parse_lines(path.read_bytes().splitlines())] if path.exists() else []


def _write(event_id: str, identity: dict[str, Any]) -> bytes:
    doc: dict[str, Any] = orjson.loads((EXAMPLES / f"{RUNBOOK}.json").read_bytes())
    doc["id"] = doc["detail"]["eventID"] = event_id
    doc["detail"]["userIdentity"] = identity
    doc["detail"]["sourceIPAddress"] = doc["detail"]["userAgent"] = identity.get("invokedBy", "203.0.113.99")
    return orjson.dumps(doc)


@pytest.mark.timeout(180)
async def test_a_service_principal_write_pages_nobody_and_a_root_write_pages(
    kafka_bootstrap, aws, topics, unique, tmp_path
):
    """A service principal's PutObject opens no incident, while the root's after it pages on-call once."""
    await ensure_topics(kafka_bootstrap, ["responder.notifications"], partitions=1)
    settings = make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", ROOT / "runbooks")
    service_write = _write(f"ct-put-sagemaker-{unique}", {"type": "AWSService", "invokedBy": "sagemaker.amazonaws.com"})
    # its own event id: the example's would give the incident id of test_runbooks.py's run of the same example, whose
    # page is on the same notifications topic
    root = orjson.loads((EXAMPLES / f"{RUNBOOK}.json").read_bytes())["detail"]["userIdentity"]
    root_write = _write(f"ct-put-root-{unique}", root)
    service = Service(settings)
    async with running(service):
        # one key, one partition: the service principal's record is handled before the root's
        await publish(kafka_bootstrap, topics["alerts"], [service_write, root_write], key=b"acme-training-data-prod")
        await wait_for(lambda: any(k == "step.result" and b["step"] == "page-oncall"
                                   for k, b in _entries(settings.timeline_path)), timeout=60)
    entries = _entries(settings.timeline_path)
    opened = [b for k, b in entries if k == "incident.opened"]
    assert [str(b["runbook"]).partition("@")[0] for b in opened] == [RUNBOOK], orjson.dumps(entries).decode()
    assert all("sagemaker" not in orjson.dumps(b).decode() for _, b in entries)
    [incident] = list(service.engine.state.incidents.by_id)
    page = await notifications(kafka_bootstrap, lambda doc: doc["incident"] == incident)
    assert [(p["severity"], p["fields"]["bucket"]) for p in page] == [("critical", "acme-training-data-prod")]
