"""One page per notify step, target and incident across runbook versions (`Incident.notified`): a new version that
pages another topic with the same step id pages that audience; one that pages the same topic does not page again."""

from __future__ import annotations

from dataclasses import replace

import pytest

from responder.catalog import load_runbooks
from tests.fakes import FakePublisher
from tests.kit import HEADER, Kit, make_kit

PAGE = """\
steps:
  - id: page
    actuator: notify.kafka.publish_message
    with: {topic: %s, title: "key used"}
"""


def _paging(kit: Kit, sent: FakePublisher) -> None:
    """The kit's engine publishes notify.kafka's records to `sent`."""
    kit.engine.context = replace(kit.engine.context, publisher=sent)


def _upgrade(kit: Kit, topic: str, sent: FakePublisher) -> None:
    """Restart with runbook `rb` replaced by its version 2, paging `topic` (a deploy; the same step id)."""
    (kit.runbooks_dir / "rb.yaml").write_text(HEADER.format(id="rb") + "version: 2\n" + PAGE % topic)
    kit.start().engine.use_runbooks(load_runbooks(kit.runbooks_dir, kit.registry))
    _paging(kit, sent)


@pytest.mark.parametrize(("topic", "sent"), [("oncall", ["oncall"]), ("security-leads", ["oncall", "security-leads"])])
async def test_a_new_version_pages_a_new_audience_and_not_the_one_already_paged(tmp_path, topic, sent):
    """After an upgrade, a new version's page step pages a new audience but not the topic already paged."""
    kit, pages = make_kit(tmp_path, {"rb": PAGE % "oncall"}), FakePublisher()
    _paging(kit, pages)
    await kit.send(finding_id=f"{topic}-1")  # its own incident: notify.kafka remembers keys it sent
    _upgrade(kit, topic, pages)
    await kit.send(finding_id=f"{topic}-2", updated="2026-11-25T10:01:00.000Z")
    assert [t for t, _, _ in pages.sent] == sent
    assert [b["reason"] for b in kit.entries("step.skipped")] == ([] if len(sent) == 2 else ["already_done"])
