"""Through the real broker: an incident the shipped `anomalous-credential-use` paged is not paged again by its next
Medium finding after the runbook is upgraded and the service restarted (one page per incident, not one per deploy)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from responder.ingest.kafka import ensure_topics, publish
from responder.service import Service
from responder.timeline.chain import parse_lines
from tests.integration.harness import make_settings, notifications, running, wait_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = "anomalous-credential-use"


def _finding(key: str, n: int) -> bytes:
    """The runbook's example GuardDuty anomaly on access key `key`, Medium, the `n`th distinct finding."""
    doc = orjson.loads((ROOT / f"runbooks/examples/{RUNBOOK}.json").read_bytes())
    doc.update(severity=5.0, id=f"anomaly-{key}-{n}", updatedAt=f"2026-11-25T10:0{n}:00.000Z")
    doc["resource"]["accessKeyDetails"]["accessKeyId"] = key
    return orjson.dumps(doc)


def _entries(path: Path) -> list[tuple[str | None, str, dict[str, object]]]:
    """(incident, kind, body) of each entry, read without taking the running service's lock."""
    return [(e.incident, e.kind, e.body) for e in parse_lines(path.read_bytes().splitlines())] \
        if path.exists() else []


def _pages(path: Path) -> list[tuple[str, str]]:
    """(kind, reason) of each entry of the `page-oncall` step."""
    return [(k, str(b.get("reason", ""))) for _, k, b in _entries(path) if b.get("step") == "page-oncall"
            and k in ("step.result", "step.skipped")]


async def test_an_upgrade_does_not_page_an_incident_that_paged_again(kafka_bootstrap, aws, topics, unique, tmp_path):
    """An incident paged by version 3 is not paged again after an upgrade to version 4: one notification record."""
    await ensure_topics(kafka_bootstrap, ["responder.notifications"], partitions=1)
    books = tmp_path / "runbooks"
    books.mkdir()
    shipped = (ROOT / f"runbooks/{RUNBOOK}.yaml").read_text()
    assert "\nversion: 3\n" in shipped
    (books / f"{RUNBOOK}.yaml").write_text(shipped)
    settings = make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", books)
    key = f"AKIAONCE{unique.upper()[:12]:0<12}"
    async with running(Service(settings)):
        await publish(kafka_bootstrap, topics["alerts"], [_finding(key, 0)])
        await wait_for(lambda: _pages(settings.timeline_path) == [("step.result", "")], timeout=60)
    (books / f"{RUNBOOK}.yaml").write_text(shipped.replace("\nversion: 3\n", "\nversion: 4\n"))
    service = Service(settings)
    async with running(service):
        await publish(kafka_bootstrap, topics["alerts"], [_finding(key, 1)])
        await wait_for(lambda: len(_pages(settings.timeline_path)) == 2, timeout=60)
    assert _pages(settings.timeline_path) == [("step.result", ""), ("step.skipped", "already_done")]
    [incident] = [i for i, k, _ in _entries(settings.timeline_path) if k == "incident.opened"]
    joined = [b for _, k, b in _entries(settings.timeline_path) if k == "incident.joined"]
    assert [b["runbook"] for b in joined] == [f"{RUNBOOK}@4"]
    sent = await notifications(kafka_bootstrap, lambda doc: doc.get("incident") == incident)
    assert [doc["severity"] for doc in sent] == ["high"]
