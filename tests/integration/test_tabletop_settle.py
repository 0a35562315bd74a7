"""The tabletop runner advances virtual time only once the service has handled what it was sent."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from responder.actuators.registry import registry
from responder.service import Service
from responder.tabletop import settle
from responder.tabletop.loader import check_playbooks
from responder.tabletop.suite import run_suite

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

TWO_INJECTS = """\
id: slow-service
title: a finding at 10 s, its redelivery at 40 s, handled by a slow service
objectives: [o]
world:
  users: [{name: ml-training, keys: [k]}]
injects:
  - {id: finding, at: 10s, event: events/guardduty-leaked-access-key.json,
     overrides: {resource.accessKeyDetails.accessKeyId: "${world.keys.k}"}}
  - {id: again, after: finding, at: 30s, event: events/guardduty-leaked-access-key.json, duplicate: true,
     overrides: {resource.accessKeyDetails.accessKeyId: "${world.keys.k}"}}
expectations:
  - {id: contained, kind: state, check: key_inactive, resource: k, must_pass: true}
"""


def _slow_lanes(monkeypatch: pytest.MonkeyPatch, delay: float) -> None:
    """Each partition lane waits `delay` wall seconds before it acts (a loaded machine), while the poll loop runs on."""
    handle = Service._handle_batch

    async def slow(self: Service, batch: dict) -> None:
        await asyncio.sleep(delay)
        await handle(self, batch)
    monkeypatch.setattr(Service, "_handle_batch", slow)


def _run(tmp_path: Path) -> dict:
    shutil.copytree(ROOT / "playbooks" / "events", tmp_path / "events")
    (tmp_path / "slow-service.yaml").write_text(TWO_INJECTS)
    found, errors = check_playbooks([tmp_path / "slow-service.yaml"], registry)
    assert not errors
    result = asyncio.run(run_suite(found, ROOT / "runbooks", work=tmp_path / "work"))
    [card] = result.cards
    return card.model_dump()


@pytest.mark.timeout(120)
def test_clock_waits_for_a_slow_lane(tmp_path, monkeypatch):
    """A record the lane acts on 1.5 s (wall) after the poll is acted on at its inject's virtual time, not the next."""
    _slow_lanes(monkeypatch, 1.5)
    card = _run(tmp_path)
    assert card["status"] == "PASS", card.get("error")
    assert card["figures"]["time_to_first_action"] == 0.0  # before the fix: 30.0, acted with the redelivery at 40 s


@pytest.mark.timeout(120)
def test_a_service_that_never_handles_fails_loudly(tmp_path, monkeypatch):
    """A lane stuck longer than the settle timeout fails the scenario with what was not handled; time stays put."""
    _slow_lanes(monkeypatch, 6.0)  # past the settle timeout; short, as the stop drains it
    monkeypatch.setattr(settle, "SETTLE_TIMEOUT", 2.0)
    card = _run(tmp_path)
    assert card["status"] == "FAIL"
    assert "did not settle at t+10s" in card["error"]
    assert "1 of the 1 alert records delivered not handled" in card["error"]
