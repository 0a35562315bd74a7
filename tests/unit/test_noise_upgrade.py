"""Upgrading training-data-write-unnamed-principal and access-key-compromise to version 2: an incident version 1
opened and paged is not told again at its next event (Incident.notified); access-key-compromise's key steps run
again."""

from __future__ import annotations

import re
from typing import Any

import orjson

from responder.engine import Engine
from tests.fakes import FakeIam
from tests.source_kit import ROOT, upgraded

EXAMPLES = ROOT / "runbooks/examples"


def _steps(engine: Engine, kind: str) -> list[str]:
    return [e.body["step"] for e in engine.recorder.entries() if e.kind == kind]


async def test_a_root_write_incident_paged_under_version_1_is_not_paged_again_under_version_2() -> None:
    """A root write incident paged under version 1 is not paged again when its next write joins under version 2."""
    doc: dict[str, Any] = orjson.loads((EXAMPLES / "training-data-write-unnamed-principal.json").read_bytes())
    first = orjson.dumps(doc)
    doc["id"] = doc["detail"]["eventID"] = "ct-put-root-2"
    publisher, engine = await upgraded("training-data-write-unnamed-principal", first, orjson.dumps(doc), FakeIam())
    assert len(publisher.sent) == 1
    assert len(engine.state.incidents.by_id) == 1
    assert _steps(engine, "step.skipped") == ["page-oncall"]


async def test_a_contained_key_s_incident_is_not_notified_again_but_its_key_steps_run_again() -> None:
    """A contained key's incident reruns its key steps under version 2 but is not notified again."""
    iam = FakeIam()
    iam.add_key("ml-training", "AKIAEXAMPLELEAKED001")
    doc: dict[str, Any] = orjson.loads((EXAMPLES / "access-key-compromise.json").read_bytes())
    first = orjson.dumps(doc)
    doc["sid"] = doc["sid"] + "-2"
    doc["result"]["_time"] = "1764040990"

    def an_hour_later() -> None:  # version 1 contained the key before: its cutoff is older
        ref = ("ml-training", "responder-revoke-older-sessions")
        iam.user_policies[ref] = re.sub(r"20\d\d-[0-9T:-]+Z", "2026-01-01T00:00:00Z", iam.user_policies[ref])

    publisher, engine = await upgraded("access-key-compromise", first, orjson.dumps(doc), iam, an_hour_later)
    assert len(publisher.sent) == 1
    assert len(engine.state.incidents.by_id) == 1
    results = [(e.body["step"], e.body["status"], e.body.get("changed")) for e in engine.recorder.entries()
               if e.kind == "step.result"]
    assert [r[:2] for r in results] == [("deactivate-key", "ok"), ("revoke-sessions", "ok"), ("notify-oncall", "ok"),
                                        ("deactivate-key", "ok"), ("revoke-sessions", "ok")]
    assert (results[3][2], results[4][2]) == (False, True)  # the key already Inactive; the cutoff moved to "now"
    assert _steps(engine, "step.skipped") == ["notify-oncall"]
    assert iam.count("update_access_key") == 1
