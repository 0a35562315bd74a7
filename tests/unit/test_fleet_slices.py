"""What a fleet member writes to the changelog for its incidents, and what a new owner makes of it."""

from __future__ import annotations

from pathlib import Path

from responder.engine.partitions import Partitions, cut, merge
from responder.engine.snapshot import EngineSnapshot
from responder.engine.state import EngineState
from responder.models.timeline import TimelineEntry
from tests.kit import Kit, make_kit
from tests.unit.test_approvals import WIPE
from tests.unit.test_guards import ECHO


def _from_partition(kit: Kit, partition: int) -> list[TimelineEntry]:
    """The kit's durable entries, as if its records had come from `partition` (the kit's carry no origin)."""
    entries = list(kit.engine.recorder.entries())
    for entry in entries:
        if entry.kind == "event.received":
            entry.body["origin"] = {"partition": partition}
    return entries


async def test_every_incident_an_event_opens_learns_its_partition(tmp_path: Path) -> None:
    """An event matching two runbooks opens two incidents; both are routed to the event's partition and move."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny", "rb2": ECHO.format(guards="")})
    await kit.send()
    incidents = {i.id for i in kit.engine.state.incidents.all()}
    assert len(incidents) == 2
    parts = Partitions()
    assert parts.route(_from_partition(kit, 4)) == {4: incidents}
    assert parts.owned(4) == incidents
    new_owner = EngineState()
    merge(new_owner, [EngineSnapshot.model_validate_json(s.model_dump_json())
                      for s in cut(kit.engine.state, parts.owned(4)).values()])
    assert new_owner.results() == kit.engine.state.results()
    assert new_owner.parked_steps() == kit.engine.state.parked_steps()
