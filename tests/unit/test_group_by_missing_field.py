"""A matched event without a field its runbook's `group_by` names is its own incident and reaches a human, never
dead-lettered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from responder.models import RawRecord
from responder.models.timeline import EntryKind
from tests.findings import guardduty_finding
from tests.kit import Kit, make_kit

HEADER = """\
id: by-account
trigger: {source: guardduty, type: "*IAMUser/*"}
group_by: "${event.region}:${event.resource.access_key.id}"
"""
RUNBOOK = HEADER + """\
steps:
  - id: note
    actuator: test.echo
    with: {target: t1, message: "${event.resource.access_key.id}"}
  - id: tag-account
    actuator: test.echo
    with: {target: t2, message: "${event.account}"}
on_failure:
  - id: page
    actuator: test.echo
    with: {target: page, message: "${failure.step}: ${failure.error}"}
"""


def _kit(tmp_path: Path) -> Kit:
    kit = make_kit(tmp_path, {})
    (kit.runbooks_dir / "by-account.yaml").write_text(RUNBOOK)
    kit.start()
    return kit


def _finding(updated: str = "2026-11-25T10:00:00.000Z", **changes: Any) -> bytes:
    finding = guardduty_finding("AKIAABCDEFGHIJKLMNOP", updated=updated)
    finding.pop("accountId", None)
    finding.pop("region", None)
    finding.update(changes)
    return orjson.dumps(finding)


async def _send(kit: Kit, value: bytes) -> None:
    assert kit.pipeline is not None
    await kit.pipeline.handle(RawRecord(topic="t", value=value))
    await kit.engine.recorder.flush()


async def test_an_event_without_the_group_by_field_opens_its_own_incident_and_pages(tmp_path: Path) -> None:
    """An event missing its `group_by` field opens its own incident; the step needing the field fails and escalates."""
    kit = _kit(tmp_path)
    await _send(kit, _finding(id="f-1"))
    [opened] = kit.entries(EntryKind.INCIDENT_OPENED)
    assert opened["group_key"] == "ungrouped:f-1"
    assert "${event.region}" in opened["ungrouped"]
    applied = {p.target: p.message for p in kit.echo.applied}
    assert applied["t1"] == "AKIAABCDEFGHIJKLMNOP"
    assert "t2" not in applied
    assert applied["page"].startswith("tag-account: ")


async def test_events_without_the_group_by_field_are_never_merged(tmp_path: Path) -> None:
    """Two distinct events without the field are two incidents; the same record delivered again is a repeat."""
    kit = _kit(tmp_path)
    await _send(kit, _finding(id="f-1"))
    await _send(kit, _finding(id="f-2"))
    await _send(kit, _finding(id="f-1"))
    opened = kit.entries(EntryKind.INCIDENT_OPENED)
    assert [o["group_key"] for o in opened] == ["ungrouped:f-1", "ungrouped:f-2"]
    [joined] = kit.entries(EntryKind.INCIDENT_JOINED)
    assert joined["repeat"] is True
    assert joined["group_key"] == "ungrouped:f-1"


async def test_a_group_key_claiming_the_fallback_form_is_not_taken(tmp_path: Path) -> None:
    """An event whose fields render an `ungrouped:` group key is grouped by its own id instead."""
    kit = _kit(tmp_path)
    await _send(kit, _finding(id="f-1"))
    forged = guardduty_finding("AKIAABCDEFGHIJKLMNOP", updated="2026-11-25T10:00:00.000Z")
    forged.update(id="f-2", region="ungrouped")
    forged["resource"]["accessKeyDetails"]["accessKeyId"] = "f-1"
    await _send(kit, orjson.dumps(forged))
    opened = kit.entries(EntryKind.INCIDENT_OPENED)
    assert [o["group_key"] for o in opened] == ["ungrouped:f-1", "ungrouped:f-2"]
    assert kit.entries(EntryKind.INCIDENT_JOINED) == []


async def test_an_event_with_the_field_is_grouped_as_before(tmp_path: Path) -> None:
    """An event that has every field is grouped by the rendered key, and `incident.opened` has no `ungrouped`."""
    kit = _kit(tmp_path)
    await _send(kit, _finding(id="f-1", accountId="111122223333", region="eu-west-1"))
    [opened] = kit.entries(EntryKind.INCIDENT_OPENED)
    assert opened["group_key"] == "eu-west-1:AKIAABCDEFGHIJKLMNOP"
    assert "ungrouped" not in opened
