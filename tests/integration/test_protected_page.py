"""A shipped runbook through the broker and moto, its key protected: the deactivation is refused, the page goes out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from responder.ingest.kafka import ensure_topics, publish
from responder.service import Service
from responder.timeline.chain import parse_lines
from tests.integration.example_kit import EXAMPLES, LEAKED_KEY, ROOT, leaked_example_key
from tests.integration.harness import make_settings, notifications, running, wait_for

pytestmark = pytest.mark.integration
RUNBOOK = "access-key-compromise"


def _entries(path: Path) -> list[tuple[str, dict[str, Any]]]:
    return [(e.kind, e.body) for e in parse_lines(path.read_bytes().splitlines())] if path.exists() else []


@pytest.mark.timeout(180)
async def test_a_protected_keys_refused_deactivation_still_pages_on_call(
    kafka_bootstrap, aws, topics, unique, tmp_path, monkeypatch
):
    """RESPONDER_PROTECTED_IDS names the leaked key: nothing is deactivated, the on_failure page is published."""
    ids = await leaked_example_key(aws)
    key = ids[LEAKED_KEY]
    monkeypatch.setenv("RESPONDER_PROTECTED_IDS", json.dumps([key]))
    await ensure_topics(kafka_bootstrap, ["responder.notifications"], partitions=1)
    settings = make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", ROOT / "runbooks")
    raw = (EXAMPLES / f"{RUNBOOK}.json").read_text().replace(LEAKED_KEY, key).encode()
    service = Service(settings)
    async with running(service):
        await publish(kafka_bootstrap, topics["alerts"], [raw])
        await wait_for(lambda: any(k == "step.result" and str(b["step"]).startswith("escalate-oncall.")
                                   for k, b in _entries(settings.timeline_path)), timeout=60)
    entries = _entries(settings.timeline_path)
    results = {b["step"]: b for k, b in entries if k == "step.result"}
    assert results["deactivate-key"]["status"] == "refused", orjson.dumps(entries).decode()
    assert results["escalate-oncall.deactivate-key"]["status"] == "ok"
    assert [b["step"] for k, b in entries if k == "guard.tripped"] == ["deactivate-key"]
    keys = await aws.call("iam", "list_access_keys", UserName="ml-training")
    assert [k["Status"] for k in keys["AccessKeyMetadata"] if k["AccessKeyId"] == key] == ["Active"]
    [incident] = list(service.engine.state.incidents.by_id)
    page = await notifications(kafka_bootstrap, lambda doc: doc["incident"] == incident)
    assert [(p["severity"], p["fields"]["target"], p["fields"]["status"]) for p in page] == [
        ("critical", key, "refused")]
