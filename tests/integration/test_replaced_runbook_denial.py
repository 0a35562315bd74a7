"""Through the real broker and moto: a human's denial of a step that waited while its runbook was upgraded is
applied at once (approval.decided, the step denied with their words), not refused and left to the timeout."""

from __future__ import annotations

from pathlib import Path

import pytest

from responder.service import Service
from responder.timeline.chain import parse_lines
from tests.integration.approval_kit import approval_setup, decide_by_cli, run_until_parked
from tests.integration.harness import key_status, running, wait_for

pytestmark = pytest.mark.integration


def _bodies(path: Path, kind: str) -> list[dict[str, object]]:
    return [e.body for e in parse_lines(path.read_bytes().splitlines()) if e.kind == kind]


async def test_a_denial_under_a_replaced_runbook_is_applied_at_once(
    kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir
):
    """A step parked under runbook version 1 and denied after a restart with version 2 is denied; nothing runs."""
    names, key, settings = await approval_setup(kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir)
    _, incident, step = await run_until_parked(kafka_bootstrap, topics, key, settings)
    book = tmp_path / "runbooks" / "iam-credential-compromise.yaml"
    assert "\nversion: 1\n" in book.read_text()
    book.write_text(book.read_text().replace("\nversion: 1\n", "\nversion: 2\n"))
    second = Service(settings)
    async with running(second):
        assert second.engine.state.parked(incident, step) is not None
        await decide_by_cli("deny", kafka_bootstrap, names, settings, incident, step, "false positive")
        await wait_for(lambda: bool(_bodies(settings.timeline_path, "step.result")), timeout=60)
        assert second.engine.state.parked(incident, step) is None
    [decided] = _bodies(settings.timeline_path, "approval.decided")
    assert decided["decision"] == "deny"
    [result] = _bodies(settings.timeline_path, "step.result")
    assert (result["step"], result["status"], result["error"]) == (step, "denied", "denied by alice")
    for kind in ("approval.rejected", "step.escalated", "escalation.missed", "step.intent"):
        assert _bodies(settings.timeline_path, kind) == [], kind
    assert await key_status(aws, key) == "Active"
